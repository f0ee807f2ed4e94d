//! The model families: one file per request/response shape, each an
//! [`ImageModel`](crate::ImageModel) over Bedrock's `InvokeModel`. Which one
//! serves a model id is decided in one place, [`crate::BedrockModel::new`],
//! from `couch_contract::model::family_of`.

pub mod amazon;
pub mod stability;

use base64::Engine as _;

use crate::error::GenerateError;

/// Largest seed every family accepts (Titan's and Nova Canvas's limit;
/// Stability's is larger).
pub const MAX_SEED: u32 = 2_147_483_646;
/// The PNG file signature.
pub const PNG_SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";

/// Whether `bytes` starts like a PNG file.
pub fn is_png(bytes: &[u8]) -> bool {
    bytes.len() > PNG_SIGNATURE.len() && bytes.starts_with(PNG_SIGNATURE)
}

/// The first of a response's base64 `images`, decoded and checked to be a PNG.
pub(crate) fn first_png(images: &[String]) -> Result<Vec<u8>, GenerateError> {
    let first = images
        .first()
        .ok_or_else(|| GenerateError::BadModelResponse("no image in the response".into()))?;
    let png = base64::engine::general_purpose::STANDARD
        .decode(first)
        .map_err(|e| GenerateError::BadModelResponse(format!("images[0] is not base64: {e}")))?;
    if !is_png(&png) {
        return Err(GenerateError::BadModelResponse(
            "images[0] is not a PNG".into(),
        ));
    }
    Ok(png)
}
