//! The client generator: progenitor's settings for dpo and a panic-safe entry point for build scripts.

use crate::SpecError;
use progenitor::{GenerationSettings, Generator, InterfaceStyle, TagStyle};
use serde_json::Value;

/// Generates the Rust client source for `document` (a bundled OpenAPI 3.0 document).
///
/// progenitor panics on some malformed documents (an unresolved `$ref`, a `default` response beside a
/// typed one); the panic is caught and returned as [`SpecError::Codegen`] with its message.
pub fn generate_client(document: &Value) -> Result<String, SpecError> {
    let spec: openapiv3::OpenAPI = serde_json::from_value(document.clone())
        .map_err(|e| SpecError::Codegen(format!("the document is not OpenAPI 3.0 as openapiv3 reads it: {e}")))?;
    let mut settings = GenerationSettings::default();
    settings.with_interface(InterfaceStyle::Positional).with_tag(TagStyle::Merged).with_derive("PartialEq");

    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let generated = std::panic::catch_unwind(move || Generator::new(&settings).generate_tokens(&spec));
    std::panic::set_hook(previous_hook);

    let tokens = match generated {
        Ok(Ok(tokens)) => tokens,
        Ok(Err(e)) => return Err(SpecError::Codegen(e.to_string())),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".to_string());
            return Err(SpecError::Codegen(format!("progenitor panicked: {message}")));
        }
    };
    let file: syn::File =
        syn::parse2(tokens).map_err(|e| SpecError::Codegen(format!("progenitor produced invalid Rust: {e}")))?;
    Ok(prettyplease::unparse(&file))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_dangling_ref_is_an_error_not_a_panic() {
        let doc = json!({
            "openapi": "3.0.3", "info": {"title": "t", "version": "1"},
            "paths": {"/x": {"get": {"operationId": "x", "responses": {"200": {"description": "ok",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Missing"}}}}}}}}
        });
        let err = generate_client(&doc).unwrap_err().to_string();
        assert!(err.contains("progenitor") && err.contains("Missing"), "{err}");
    }
}
