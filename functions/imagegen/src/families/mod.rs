//! The model families: one file per request/response shape, each an
//! [`ImageModel`](crate::ImageModel) over Bedrock's `InvokeModel`. Which one
//! serves a model id is decided in one place, [`BedrockModel::new`],
//! from `couch_contract::model::family_of`.

pub mod amazon;
pub mod stability;

use async_trait::async_trait;
use base64::Engine as _;
use couch_contract::model::{Family, KNOWN_PREFIXES, PromptRule, family_of};

use crate::error::GenerateError;
use crate::model::ImageModel;
use crate::prompt::Prompt;
use amazon::AmazonImageModel;
use stability::StabilityModel;

/// A model id of no family this code speaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("model {0:?} is of no known family; known: {KNOWN_PREFIXES}")]
pub struct UnknownModel(pub String);

/// The Bedrock model a stack declares, in the family its id names: the one
/// place where a model id chooses its request and response shape.
pub enum BedrockModel {
    Amazon(AmazonImageModel),
    Stability(StabilityModel),
}

impl BedrockModel {
    pub fn new(
        client: aws_sdk_bedrockruntime::Client,
        model_id: impl Into<String>,
    ) -> Result<Self, UnknownModel> {
        let model_id = model_id.into();
        let (Some(family), Some(rule)) = (family_of(&model_id), PromptRule::for_model(&model_id))
        else {
            return Err(UnknownModel(model_id));
        };
        Ok(BedrockModel::of_family(client, model_id, family, rule))
    }

    /// For an id whose family and rule are already known (a checked [`crate::Config`]).
    pub fn of_family(
        client: aws_sdk_bedrockruntime::Client,
        model_id: String,
        family: Family,
        rule: PromptRule,
    ) -> Self {
        match family {
            Family::AmazonTextImage => {
                BedrockModel::Amazon(AmazonImageModel::new(client, model_id, rule))
            }
            Family::Stability => BedrockModel::Stability(StabilityModel::new(client, model_id)),
        }
    }

    fn inner(&self) -> &dyn ImageModel {
        match self {
            BedrockModel::Amazon(m) => m,
            BedrockModel::Stability(m) => m,
        }
    }
}

#[async_trait]
impl ImageModel for BedrockModel {
    fn model_id(&self) -> &str {
        self.inner().model_id()
    }
    fn prompt_rule(&self) -> PromptRule {
        self.inner().prompt_rule()
    }
    async fn generate(&self, prompt: &Prompt, seed: u32) -> Result<Vec<u8>, GenerateError> {
        self.inner().generate(prompt, seed).await
    }
}

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
