//! Sending email with lettre: over SMTP (`AEROBOOK_SMTP_URL`: plain, STARTTLS or implicit TLS, with
//! rustls and the system's trusted roots), or, without a server, as one `.eml` file per message under the
//! data directory (development: open them in any mail reader).

use std::{path::PathBuf, time::Duration};

use lettre::{
    AsyncFileTransport, AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor,
    message::{Attachment, Mailbox, MultiPart, SinglePart, header::ContentType},
};

use super::barcode::{BarcodeError, pdf417_png};
use crate::{config::MailConfig, domain::notification::Email};

/// Why an email was not handed over.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The message could not be built (a recipient address that does not parse, say): retrying will not
    /// help.
    #[error("the email could not be built: {0}")]
    Invalid(String),
    /// The SMTP server refused it, or could not be reached in time.
    #[error("the mail server did not accept the email: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    #[error("the email could not be written: {0}")]
    File(#[from] lettre::transport::file::Error),
    #[error("the mail directory could not be created: {0}")]
    Directory(#[from] std::io::Error),
    /// A barcode the email shows could not be drawn: the same every time.
    #[error(transparent)]
    Barcode(#[from] BarcodeError),
}

impl MailError {
    /// An error that the same message will meet again, however often it is sent: a message that cannot
    /// be built. SMTP refusals, even permanent (5xx) ones, are retried like outages: a wrong password or
    /// a refused sender is fixed in the configuration, and the emails then go out without an operator
    /// retrying each one.
    pub fn is_permanent(&self) -> bool {
        matches!(self, MailError::Invalid(_) | MailError::Barcode(_))
    }
}

#[derive(Clone)]
enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(PathBuf),
}

/// Hands emails to the configured transport.
#[derive(Clone)]
pub struct Mailer {
    from: Mailbox,
    transport: Transport,
}

impl Mailer {
    pub fn new(config: &MailConfig) -> Result<Self, MailError> {
        let from = config.from.parse().map_err(|e: lettre::address::AddressError| MailError::Invalid(e.to_string()))?;
        let transport = match &config.smtp_url {
            Some(url) => Transport::Smtp(smtp_transport(url.expose(), config.smtp_timeout)?),
            None => Transport::Files(config.outbox_dir.clone()),
        };
        Ok(Self { from, transport })
    }

    /// Where mail goes, for the start-up log (credentials left out).
    pub fn describe(&self) -> String {
        match &self.transport {
            Transport::Smtp(_) => "SMTP (AEROBOOK_SMTP_URL)".to_owned(),
            Transport::Files(dir) => format!(".eml files in {}", dir.display()),
        }
    }

    /// Sends `email` with a plain-text and an HTML alternative (the HTML with its barcodes as inline
    /// images), under its own Message-ID.
    #[tracing::instrument(name = "smtp send", skip_all, fields(otel.kind = "client", mail.message_id = %email.message_id))]
    pub async fn send(&self, email: &Email) -> Result<(), MailError> {
        let to: Mailbox =
            email.to.parse().map_err(|e: lettre::address::AddressError| MailError::Invalid(e.to_string()))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.clone())
            .message_id(Some(email.message_id.clone()))
            .multipart(body(email)?)
            .map_err(|e| MailError::Invalid(e.to_string()))?;
        match &self.transport {
            Transport::Smtp(smtp) => {
                smtp.send(message).await?;
            }
            Transport::Files(dir) => {
                tokio::fs::create_dir_all(dir).await?;
                AsyncFileTransport::<Tokio1Executor>::new(dir).send(message).await?;
            }
        }
        Ok(())
    }
}

fn body(email: &Email) -> Result<MultiPart, MailError> {
    if email.barcodes.is_empty() {
        return Ok(MultiPart::alternative_plain_html(email.text.clone(), email.html.clone()));
    }
    let mut related = MultiPart::related().singlepart(SinglePart::html(email.html.clone()));
    let png = ContentType::parse("image/png").map_err(|e| MailError::Invalid(e.to_string()))?;
    for barcode in &email.barcodes {
        let image = pdf417_png(&barcode.text)?;
        related = related.singlepart(Attachment::new_inline(barcode.content_id.clone()).body(image, png.clone()));
    }
    Ok(MultiPart::alternative().singlepart(SinglePart::plain(email.text.clone())).multipart(related))
}

fn smtp_transport(url: &str, timeout: Duration) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailError> {
    Ok(AsyncSmtpTransport::<Tokio1Executor>::from_url(url)?.timeout(Some(timeout)).build())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Building starts the connection pool's task: it needs the runtime.
    #[tokio::test]
    async fn the_three_url_forms_build_a_transport() {
        for url in
            ["smtp://127.0.0.1:2525", "smtp://user:pass@mail.example:587?tls=required", "smtps://mail.example:465"]
        {
            assert!(smtp_transport(url, Duration::from_secs(1)).is_ok(), "{url}");
        }
    }
}
