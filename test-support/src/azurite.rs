//! Azurite, the Azure Storage emulator: its documented development account, and account SAS URLs
//! signed with that account's public key, for tests and benchmarks (the server reaches Azurite through
//! `--emulator-host`; it never signs anything itself).

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The emulator's documented development account.
pub const ACCOUNT: &str = "devstoreaccount1";
/// Its documented, public key (not a secret: every Azurite installation has it).
pub const ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Why a SAS could not be signed.
#[derive(Debug, thiserror::Error)]
#[error("signing a SAS: {0}")]
pub struct SignError(String);

/// Account SAS query string (service version 2018-11-09) for blobs with permissions `sp`, valid until
/// `expiry` (RFC 3339, whole seconds), signed with the base64 account `key`.
pub fn account_sas(sp: &str, expiry: &str, key: &str) -> Result<String, SignError> {
    let (ss, srt, sv) = ("b", "sco", "2018-11-09");
    let to_sign = format!("{ACCOUNT}\n{sp}\n{ss}\n{srt}\n\n{expiry}\n\n\n{sv}\n");
    let key = STANDARD.decode(key).map_err(|e| SignError(format!("the key is not base64: {e}")))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|e| SignError(e.to_string()))?;
    mac.update(to_sign.as_bytes());
    let sig = STANDARD.encode(mac.finalize().into_bytes());
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    Ok(format!("sv={sv}&ss={ss}&srt={srt}&sp={sp}&se={}&sig={}", encode(expiry), encode(&sig)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sas_names_its_permissions_and_expiry_and_is_signed() {
        let sas = account_sas("cw", "2099-01-01T00:00:00Z", ACCOUNT_KEY).unwrap();
        assert!(sas.starts_with("sv=2018-11-09&ss=b&srt=sco&sp=cw&se=2099-01-01T00%3A00%3A00Z&sig="), "{sas}");
        assert_ne!(sas, account_sas("cw", "2099-01-01T00:00:00Z", &STANDARD.encode(b"another key")).unwrap());
        assert!(account_sas("cw", "2099-01-01T00:00:00Z", "not base64!").is_err());
    }
}
