//! The request and response bodies of Titan Image Generator's text-to-image
//! task. The same shape serves `amazon.titan-image-generator-v1`,
//! `amazon.titan-image-generator-v2:0` and `amazon.nova-canvas-v1:0`.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::error::GenerateError;
use crate::prompt::Prompt;

/// Largest seed the models accept.
pub const MAX_SEED: u32 = 2_147_483_647;
/// The PNG file signature.
pub const PNG_SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    pub task_type: String,
    pub text_to_image_params: TextToImageParams,
    pub image_generation_config: ImageGenerationConfig,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct TextToImageParams {
    pub text: String,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ImageGenerationConfig {
    pub number_of_images: u32,
    pub quality: String,
    pub cfg_scale: f32,
    pub height: u32,
    pub width: u32,
    pub seed: u32,
}

impl Request {
    pub fn text_to_image(prompt: &Prompt, seed: u32) -> Request {
        Request {
            task_type: "TEXT_IMAGE".into(),
            text_to_image_params: TextToImageParams {
                text: prompt.as_str().to_owned(),
            },
            image_generation_config: ImageGenerationConfig {
                number_of_images: 1,
                quality: "standard".into(),
                cfg_scale: 8.0,
                height: 1024,
                width: 1024,
                seed: seed.min(MAX_SEED),
            },
        }
    }
}

#[derive(Debug, Deserialize)]
struct Response {
    #[serde(default)]
    images: Vec<String>,
    #[serde(default)]
    error: Option<String>,
}

/// Whether `bytes` starts like a PNG file.
pub fn is_png(bytes: &[u8]) -> bool {
    bytes.len() > PNG_SIGNATURE.len() && bytes.starts_with(PNG_SIGNATURE)
}

/// The first image of a response body, decoded and checked to be a PNG.
pub fn decode_response(body: &[u8]) -> Result<Vec<u8>, GenerateError> {
    let response: Response = serde_json::from_slice(body)
        .map_err(|e| GenerateError::BadModelResponse(format!("not the expected JSON: {e}")))?;
    if let Some(err) = response.error.filter(|e| !e.is_empty()) {
        return Err(if err.to_ascii_lowercase().contains("content filter") {
            GenerateError::ContentFiltered(err)
        } else {
            GenerateError::Model(err)
        });
    }
    let first = response
        .images
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_has_the_titan_shape() {
        let p = Prompt::parse("a cat").unwrap();
        let v = serde_json::to_value(Request::text_to_image(&p, 42)).unwrap();
        assert_eq!(
            v,
            json!({
                "taskType": "TEXT_IMAGE",
                "textToImageParams": {"text": "a cat"},
                "imageGenerationConfig": {"numberOfImages": 1, "quality": "standard", "cfgScale": 8.0, "height": 1024, "width": 1024, "seed": 42}
            })
        );
    }

    #[test]
    fn decodes_the_first_png() {
        let png = [PNG_SIGNATURE.as_slice(), b"rest"].concat();
        let body = json!({"images": [base64::engine::general_purpose::STANDARD.encode(&png)], "error": null});
        assert_eq!(decode_response(body.to_string().as_bytes()).unwrap(), png);
    }

    #[test]
    fn rejects_what_is_not_a_png() {
        let body =
            json!({"images": [base64::engine::general_purpose::STANDARD.encode(b"GIF89a....")]});
        assert!(matches!(
            decode_response(body.to_string().as_bytes()),
            Err(GenerateError::BadModelResponse(_))
        ));
        assert!(matches!(
            decode_response(br#"{"images": ["%%%"]}"#),
            Err(GenerateError::BadModelResponse(_))
        ));
        assert!(matches!(
            decode_response(br#"{"images": []}"#),
            Err(GenerateError::BadModelResponse(_))
        ));
        assert!(matches!(
            decode_response(b"<html>"),
            Err(GenerateError::BadModelResponse(_))
        ));
    }

    #[test]
    fn error_in_the_body_is_classified() {
        let e = decode_response(
            br#"{"images": [], "error": "This request has been blocked by our content filters."}"#,
        )
        .unwrap_err();
        assert!(matches!(e, GenerateError::ContentFiltered(_)));
        let e = decode_response(br#"{"images": [], "error": "internal"}"#).unwrap_err();
        assert!(matches!(e, GenerateError::Model(_)));
    }
}
