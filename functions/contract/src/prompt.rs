//! A prompt as the image models accept it: trimmed, at least one character and
//! at most the model's limit ([`PromptRule`]), no control characters but
//! newlines.

use std::fmt;

pub use crate::model::PromptRule;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PromptError {
    #[error("the prompt is empty")]
    Empty,
    #[error("the prompt is {chars} characters long; the model's limit is {limit}")]
    TooLong { chars: usize, limit: usize },
    #[error(
        "the prompt contains a control character (U+{code:04X}) at character {position}; only newlines are allowed"
    )]
    ControlCharacter { code: u32, position: usize },
}

impl Prompt {
    /// The prompt `raw` as a model with `rule` accepts it.
    pub fn parse(raw: &str, rule: PromptRule) -> Result<Prompt, PromptError> {
        let text = raw.trim();
        if text.is_empty() {
            return Err(PromptError::Empty);
        }
        let chars = text.chars().count();
        if chars > rule.max_chars {
            return Err(PromptError::TooLong {
                chars,
                limit: rule.max_chars,
            });
        }
        if let Some((position, c)) = text
            .chars()
            .enumerate()
            .find(|(_, c)| c.is_control() && *c != '\n')
        {
            return Err(PromptError::ControlCharacter {
                code: u32::from(c),
                position: position + 1,
            });
        }
        Ok(Prompt(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn chars(&self) -> usize {
        self.0.chars().count()
    }
}

impl fmt::Display for Prompt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TITAN: PromptRule = PromptRule::TITAN;

    #[test]
    fn trims_and_accepts_unicode_and_newlines() {
        let p = Prompt::parse("  me at a Parisian café,\npolaroid filter 📷 ", TITAN).unwrap();
        assert_eq!(p.as_str(), "me at a Parisian café,\npolaroid filter 📷");
    }

    #[test]
    fn empty_and_blank_are_rejected() {
        assert_eq!(Prompt::parse("", TITAN), Err(PromptError::Empty));
        assert_eq!(Prompt::parse(" \n\t ", TITAN), Err(PromptError::Empty));
    }

    #[test]
    fn length_is_counted_in_characters() {
        assert!(Prompt::parse(&"é".repeat(512), TITAN).is_ok());
        assert_eq!(
            Prompt::parse(&"é".repeat(513), TITAN),
            Err(PromptError::TooLong {
                chars: 513,
                limit: 512
            })
        );
        // The same prompt is fine for a model with a longer limit.
        assert!(Prompt::parse(&"é".repeat(513), PromptRule::NOVA_CANVAS).is_ok());
        assert!(Prompt::parse(&"é".repeat(10_000), PromptRule::STABILITY).is_ok());
        assert!(Prompt::parse(&"é".repeat(10_001), PromptRule::STABILITY).is_err());
    }

    #[test]
    fn control_characters_are_rejected_with_their_position() {
        assert_eq!(
            Prompt::parse("ab\u{7}c", TITAN),
            Err(PromptError::ControlCharacter {
                code: 7,
                position: 3
            })
        );
        assert!(Prompt::parse("a\tb", TITAN).is_err());
        assert!(Prompt::parse("a\r\nb", TITAN).is_err());
    }
}
