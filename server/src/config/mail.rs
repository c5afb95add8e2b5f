//! Where customers' emails go: an SMTP server, or `.eml` files when there is none.

use std::{path::PathBuf, time::Duration};

use super::{ConfigError, Secret, read::invalid};

/// Where customers' emails go.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// An SMTP server in lettre's URL form (credentials included); `None` writes one `.eml` file per
    /// message under `outbox_dir`.
    pub smtp_url: Option<Secret>,
    /// The sender: `Name <address>` or an address.
    pub from: String,
    /// Longest wait for the SMTP server at each step of a send.
    pub smtp_timeout: Duration,
    /// The `.eml` directory when there is no SMTP server.
    pub outbox_dir: PathBuf,
}

/// `smtp://` (plain, or STARTTLS with `?tls=required`) or `smtps://` (implicit TLS), as lettre reads them.
pub(super) fn smtp_url<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Option<Secret>, ConfigError> {
    let Some(url) = get("AEROBOOK_SMTP_URL") else {
        return Ok(None);
    };
    if !url.starts_with("smtp://") && !url.starts_with("smtps://") {
        return Err(invalid("AEROBOOK_SMTP_URL", "must start with smtp:// or smtps://"));
    }
    lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(url)
        .map_err(|e| invalid("AEROBOOK_SMTP_URL", format!("not an SMTP URL lettre accepts: {e}")))?;
    Ok(Some(Secret::new(url)))
}

pub(super) fn mail_from<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<String, ConfigError> {
    let from = get("AEROBOOK_MAIL_FROM").unwrap_or("Aerobook <bookings@aerobook.localhost>");
    from.parse::<lettre::message::Mailbox>()
        .map_err(|e| invalid("AEROBOOK_MAIL_FROM", format!("not a mailbox (Name <address>): {e}")))?;
    Ok(from.to_owned())
}
