//! Which Bedrock image models the system speaks, by model id: the request
//! shape ("family") and the prompt rule each one imposes. The functions choose
//! their request and response bodies from this, `validate` rejects an id of no
//! known family, and the client checks prompts with the same rule.
//!
//! Sources (AWS's documentation, read 2026-12):
//! - Amazon's TEXT_IMAGE shape (Titan Image Generator G1 v1/v2, Nova Canvas):
//!   bedrock/latest/userguide/model-parameters-titan-image.html and
//!   nova/latest/userguide/image-gen-req-resp-structure.html
//!   (`textToImageParams.text`: 1–512 characters for Titan, 1–1024 for Nova Canvas).
//! - Stability AI (Stable Image Core / Ultra, SD 3.5 Large):
//!   bedrock/latest/userguide/model-parameters-diffusion-stable-image-core-text-image-request-response.html
//!   (`prompt`: 0–10,000 characters).
//! - Cross-Region inference profile ids are the model id behind a geography
//!   prefix (`us.`, `eu.`, `apac.`, `global.`):
//!   bedrock/latest/userguide/inference-profiles-support.html.

use std::fmt;

/// A request/response shape of Bedrock image models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// Amazon's `taskType: TEXT_IMAGE` body: Titan Image Generator, Nova Canvas.
    AmazonTextImage,
    /// Stability AI's `{"prompt", "seed", "aspect_ratio", "output_format"}` body.
    Stability,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::AmazonTextImage => "amazon-text-image",
            Family::Stability => "stability",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Geography prefixes of cross-Region (system-defined) inference profile ids.
pub const PROFILE_PREFIXES: &[&str] = &["us.", "eu.", "apac.", "global."];

/// The foundation model an id names: the id itself, or the model behind an
/// inference profile's geography prefix (`us.stability.x` → `stability.x`).
pub fn base_model_id(id: &str) -> &str {
    PROFILE_PREFIXES
        .iter()
        .find_map(|p| id.strip_prefix(p))
        .unwrap_or(id)
}

/// Whether `id` is a cross-Region inference profile id rather than a model id.
pub fn is_inference_profile(id: &str) -> bool {
    base_model_id(id) != id
}

/// The family of a model id or inference profile id; `None` for a model this
/// system cannot speak to.
pub fn family_of(id: &str) -> Option<Family> {
    let base = base_model_id(id);
    if base.starts_with("amazon.titan-image-generator-") || base.starts_with("amazon.nova-canvas-")
    {
        Some(Family::AmazonTextImage)
    } else if base.starts_with("stability.") {
        Some(Family::Stability)
    } else {
        None
    }
}

/// The families' model-id prefixes, for error messages.
pub const KNOWN_PREFIXES: &str = "amazon.titan-image-generator-*, amazon.nova-canvas-*, stability.* (optionally behind us./eu./apac./global.)";

/// The longest prompt a model accepts, in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromptRule {
    pub max_chars: usize,
}

impl PromptRule {
    /// Titan Image Generator's `textToImageParams.text` limit.
    pub const TITAN: PromptRule = PromptRule { max_chars: 512 };
    /// Nova Canvas's `textToImageParams.text` limit.
    pub const NOVA_CANVAS: PromptRule = PromptRule { max_chars: 1024 };
    /// Stability AI's `prompt` limit.
    pub const STABILITY: PromptRule = PromptRule { max_chars: 10_000 };
    /// The loosest rule of any known model: what a caller that does not know
    /// the stack's model checks (the functions check the real one).
    pub const LOOSEST: PromptRule = PromptRule::STABILITY;

    /// The rule of a model id (or inference profile id) of a known family.
    pub fn for_model(id: &str) -> Option<PromptRule> {
        let base = base_model_id(id);
        match family_of(id)? {
            Family::AmazonTextImage if base.starts_with("amazon.nova-canvas-") => {
                Some(PromptRule::NOVA_CANVAS)
            }
            Family::AmazonTextImage => Some(PromptRule::TITAN),
            Family::Stability => Some(PromptRule::STABILITY),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_by_id_and_profile_prefix() {
        assert_eq!(
            family_of("amazon.titan-image-generator-v1"),
            Some(Family::AmazonTextImage)
        );
        assert_eq!(
            family_of("amazon.nova-canvas-v1:0"),
            Some(Family::AmazonTextImage)
        );
        assert_eq!(
            family_of("stability.stable-image-core-v1:1"),
            Some(Family::Stability)
        );
        assert_eq!(
            family_of("us.stability.stable-image-core-v1:1"),
            Some(Family::Stability)
        );
        assert_eq!(
            family_of("global.amazon.nova-canvas-v1:0"),
            Some(Family::AmazonTextImage)
        );
        assert_eq!(family_of("anthropic.claude-3-haiku-20240307-v1:0"), None);
        assert_eq!(family_of("amazon.titan-text-express-v1"), None);
        assert_eq!(family_of("xx.stability.sd3-5-large-v1:0"), None);
    }

    #[test]
    fn profiles_name_their_base_model() {
        assert_eq!(
            base_model_id("us.stability.stable-image-core-v1:1"),
            "stability.stable-image-core-v1:1"
        );
        assert!(is_inference_profile("eu.amazon.nova-canvas-v1:0"));
        assert!(!is_inference_profile("stability.sd3-5-large-v1:0"));
    }

    #[test]
    fn prompt_rules_per_model() {
        let rule = |id| PromptRule::for_model(id).map(|r| r.max_chars);
        assert_eq!(rule("amazon.titan-image-generator-v2:0"), Some(512));
        assert_eq!(rule("us.amazon.nova-canvas-v1:0"), Some(1024));
        assert_eq!(rule("stability.stable-image-ultra-v1:1"), Some(10_000));
        assert_eq!(rule("meta.llama3"), None);
        assert_eq!(PromptRule::LOOSEST.max_chars, 10_000);
    }
}
