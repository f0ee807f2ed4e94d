//! Amazon's `TEXT_IMAGE` family: Titan Image Generator G1 (v1, v2) and Nova
//! Canvas share one request and response shape (AWS: bedrock/latest/userguide/
//! model-parameters-titan-image.html, nova/latest/userguide/
//! image-gen-req-resp-structure.html). Refusals come two ways: a
//! `ValidationException` whose message names the content filters (the prompt
//! was blocked), or HTTP 200 with an `error` string and no image (the output
//! was blocked).

use async_trait::async_trait;
use couch_contract::model::PromptRule;
use serde::{Deserialize, Serialize};

use super::{MAX_SEED, first_png};
use crate::error::GenerateError;
use crate::model::{ImageModel, invoke};
use crate::prompt::Prompt;

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

/// The first image of an HTTP-200 response body, decoded and checked to be a PNG.
pub fn decode_response(body: &[u8]) -> Result<Vec<u8>, GenerateError> {
    let response: Response = serde_json::from_slice(body)
        .map_err(|e| GenerateError::BadModelResponse(format!("not the expected JSON: {e}")))?;
    if let Some(err) = response.error.filter(|e| !e.is_empty()) {
        let lower = err.to_ascii_lowercase();
        return Err(
            if lower.contains("content filter") || lower.contains("blocked by") {
                GenerateError::ContentFiltered(err)
            } else {
                GenerateError::Model(err)
            },
        );
    }
    first_png(&response.images)
}

/// Titan Image Generator or Nova Canvas through `InvokeModel`.
pub struct AmazonImageModel {
    client: aws_sdk_bedrockruntime::Client,
    model_id: String,
    rule: PromptRule,
}

impl AmazonImageModel {
    pub fn new(client: aws_sdk_bedrockruntime::Client, model_id: String, rule: PromptRule) -> Self {
        AmazonImageModel {
            client,
            model_id,
            rule,
        }
    }
}

#[async_trait]
impl ImageModel for AmazonImageModel {
    fn model_id(&self) -> &str {
        &self.model_id
    }
    fn prompt_rule(&self) -> PromptRule {
        self.rule
    }
    async fn generate(&self, prompt: &Prompt, seed: u32) -> Result<Vec<u8>, GenerateError> {
        let body = serde_json::to_vec(&Request::text_to_image(prompt, seed))
            .map_err(|e| GenerateError::Model(format!("cannot encode the request: {e}")))?;
        decode_response(&invoke(&self.client, &self.model_id, body).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::families::PNG_SIGNATURE;
    use base64::Engine as _;
    use serde_json::json;

    #[test]
    fn request_has_the_text_image_shape() {
        let p = Prompt::parse("a cat", PromptRule::TITAN).unwrap();
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
        for bad in [
            body.to_string().into_bytes(),
            br#"{"images": ["%%%"]}"#.to_vec(),
            br#"{"images": []}"#.to_vec(),
            b"<html>".to_vec(),
        ] {
            assert!(matches!(
                decode_response(&bad),
                Err(GenerateError::BadModelResponse(_))
            ));
        }
    }

    #[test]
    fn an_error_in_a_200_body_is_classified() {
        // Titan's and Nova Canvas's answer when the generated image is blocked.
        for blocked in [
            r#"{"images": [], "error": "This request has been blocked by our content filters."}"#,
            r#"{"images": [], "error": "The generated image has been blocked by our content filters."}"#,
        ] {
            let e = decode_response(blocked.as_bytes()).unwrap_err();
            assert!(matches!(e, GenerateError::ContentFiltered(_)), "{e}");
        }
        let e = decode_response(br#"{"images": [], "error": "internal"}"#).unwrap_err();
        assert!(matches!(e, GenerateError::Model(_)));
    }
}
