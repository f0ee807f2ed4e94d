//! Stability AI's family on Bedrock: Stable Image Core, Stable Image Ultra,
//! Stable Diffusion 3.5 Large (AWS: bedrock/latest/userguide/
//! model-parameters-diffusion-stable-image-core-text-image-request-response.html).
//! Request `{"prompt", "seed", "aspect_ratio", "output_format"}`; answer
//! `{"seeds", "finish_reasons", "images"}`, HTTP 200 even when the content
//! filter refuses: then `finish_reasons[0]` is `"Filter reason: prompt"`,
//! `"Filter reason: output image"` or `"Filter reason: input image"`, and
//! `"Inference error"` when the model failed; `null` means success.

use async_trait::async_trait;
use couch_contract::model::PromptRule;
use serde::{Deserialize, Serialize};

use super::{MAX_SEED, first_png};
use crate::error::GenerateError;
use crate::model::{ImageModel, invoke};
use crate::prompt::Prompt;

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Request {
    pub prompt: String,
    pub seed: u32,
    pub aspect_ratio: String,
    pub output_format: String,
}

impl Request {
    pub fn text_to_image(prompt: &Prompt, seed: u32) -> Request {
        Request {
            prompt: prompt.as_str().to_owned(),
            seed: seed.min(MAX_SEED),
            aspect_ratio: "1:1".into(),
            output_format: "png".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
struct Response {
    #[serde(default)]
    images: Vec<String>,
    #[serde(default)]
    finish_reasons: Vec<Option<String>>,
}

/// The image of an HTTP-200 answer, or the refusal or failure it reports.
pub fn decode_response(body: &[u8]) -> Result<Vec<u8>, GenerateError> {
    let response: Response = serde_json::from_slice(body)
        .map_err(|e| GenerateError::BadModelResponse(format!("not the expected JSON: {e}")))?;
    if let Some(reason) = response.finish_reasons.iter().flatten().next() {
        return Err(if reason.starts_with("Filter reason") {
            GenerateError::ContentFiltered(reason.clone())
        } else {
            // "Inference error", or a reason AWS adds later: not the caller's fault.
            GenerateError::Model(format!("finish reason: {reason}"))
        });
    }
    first_png(&response.images)
}

/// A Stability AI image model through `InvokeModel`.
pub struct StabilityModel {
    client: aws_sdk_bedrockruntime::Client,
    model_id: String,
}

impl StabilityModel {
    pub fn new(client: aws_sdk_bedrockruntime::Client, model_id: String) -> Self {
        StabilityModel { client, model_id }
    }
}

#[async_trait]
impl ImageModel for StabilityModel {
    fn model_id(&self) -> &str {
        &self.model_id
    }
    fn prompt_rule(&self) -> PromptRule {
        PromptRule::STABILITY
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
    fn request_has_the_stability_shape() {
        let p = Prompt::parse("a cat", PromptRule::STABILITY).unwrap();
        let v = serde_json::to_value(Request::text_to_image(&p, 42)).unwrap();
        assert_eq!(
            v,
            json!({"prompt": "a cat", "seed": 42, "aspect_ratio": "1:1", "output_format": "png"})
        );
    }

    #[test]
    fn a_successful_answer_is_the_png() {
        let png = [PNG_SIGNATURE.as_slice(), b"rest"].concat();
        // As AWS documents it: seeds, finish_reasons [null], images.
        let body = json!({"seeds": [2130420379u32], "finish_reasons": [null],
            "images": [base64::engine::general_purpose::STANDARD.encode(&png)]});
        assert_eq!(decode_response(body.to_string().as_bytes()).unwrap(), png);
    }

    #[test]
    fn filter_reasons_are_refusals_and_inference_errors_are_failures() {
        for reason in [
            "Filter reason: prompt",
            "Filter reason: output image",
            "Filter reason: input image",
        ] {
            // AWS's documented refusal: only finish_reasons, HTTP 200.
            let body = json!({"finish_reasons": [reason]}).to_string();
            let e = decode_response(body.as_bytes()).unwrap_err();
            assert!(matches!(e, GenerateError::ContentFiltered(_)), "{reason}");
        }
        let body = json!({"seeds": [1], "finish_reasons": ["Inference error"], "images": []});
        let e = decode_response(body.to_string().as_bytes()).unwrap_err();
        assert!(matches!(e, GenerateError::Model(_)));
        assert!(e.retryable());
    }

    #[test]
    fn a_body_without_an_image_is_unusable() {
        let body = json!({"seeds": [1], "finish_reasons": [null], "images": []});
        assert!(matches!(
            decode_response(body.to_string().as_bytes()),
            Err(GenerateError::BadModelResponse(_))
        ));
        assert!(matches!(
            decode_response(b"{\"message\": \"x\"}"),
            Err(GenerateError::BadModelResponse(_))
        ));
    }
}
