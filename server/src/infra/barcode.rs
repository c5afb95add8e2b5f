//! Boarding-pass barcodes as images, for emails: PDF417 (a symbology Resolution 792 allows on printed and
//! emailed passes), encoded by rxing and written as a grey-scale PNG any mail reader shows inline.

use rxing::{BarcodeFormat, EncodeHints, Writer as _, pdf417::PDF417Writer};

/// Pixels per module across; rows are four modules tall, as PDF417 draws them.
const MODULE_PIXELS: u32 = 2;
/// The quiet zone around the symbol, in modules.
const QUIET_MODULES: &str = "4";

#[derive(Debug, thiserror::Error)]
pub enum BarcodeError {
    #[error("the text cannot be encoded as PDF417: {0}")]
    Encode(#[from] rxing::Exceptions),
    #[error("the image cannot be written: {0}")]
    Png(#[from] png::EncodingError),
}

/// `text` as a PDF417 symbol, drawn as a PNG.
pub fn pdf417_png(text: &str) -> Result<Vec<u8>, BarcodeError> {
    let hints = EncodeHints { Margin: Some(QUIET_MODULES.to_owned()), ..EncodeHints::default() };
    // No preferred size: the symbol at one pixel per module, scaled below.
    let matrix = PDF417Writer.encode_with_hints(text, &BarcodeFormat::PDF_417, 0, 0, &hints)?;
    let (width, height) = (matrix.width() * MODULE_PIXELS, matrix.height() * MODULE_PIXELS);
    let mut pixels = Vec::with_capacity((width * height) as usize);
    for y in 0..height {
        for x in 0..width {
            pixels.push(if matrix.get(x / MODULE_PIXELS, y / MODULE_PIXELS) { 0 } else { 255 });
        }
    }
    let mut image = Vec::new();
    let mut encoder = png::Encoder::new(&mut image, width, height);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&pixels)?;
    writer.finish()?;
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The image read back by rxing's own PDF417 reader gives the text encoded.
    #[test]
    fn a_drawn_pass_reads_back() {
        let pass =
            "M1HADDAD/SARA         EK7Q2XM RUHJEDAB 0101 061Y012A0001 162>6000F9990000000042  AB                    ";
        let image = pdf417_png(pass).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(image));
        let mut reader = decoder.read_info().unwrap();
        let mut luma = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut luma).unwrap();
        luma.truncate(info.buffer_size());
        let read = rxing::helpers::detect_in_luma(luma, info.width, info.height, Some(BarcodeFormat::PDF_417)).unwrap();
        assert_eq!(read.getText(), pass);
    }
}
