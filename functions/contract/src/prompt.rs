//! A prompt as Titan accepts it: trimmed, 1..=512 characters, no control
//! characters but newlines.

use std::fmt;

/// Titan Image Generator's limit on `textToImageParams.text`.
pub const MAX_CHARS: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PromptError {
    #[error("the prompt is empty")]
    Empty,
    #[error("the prompt is {chars} characters long; the limit is {MAX_CHARS}")]
    TooLong { chars: usize },
    #[error(
        "the prompt contains a control character (U+{code:04X}) at character {position}; only newlines are allowed"
    )]
    ControlCharacter { code: u32, position: usize },
}

impl Prompt {
    pub fn parse(raw: &str) -> Result<Prompt, PromptError> {
        let text = raw.trim();
        if text.is_empty() {
            return Err(PromptError::Empty);
        }
        let chars = text.chars().count();
        if chars > MAX_CHARS {
            return Err(PromptError::TooLong { chars });
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

    #[test]
    fn trims_and_accepts_unicode_and_newlines() {
        let p = Prompt::parse("  me at a Parisian café,\npolaroid filter 📷 ").unwrap();
        assert_eq!(p.as_str(), "me at a Parisian café,\npolaroid filter 📷");
    }

    #[test]
    fn empty_and_blank_are_rejected() {
        assert_eq!(Prompt::parse(""), Err(PromptError::Empty));
        assert_eq!(Prompt::parse(" \n\t "), Err(PromptError::Empty));
    }

    #[test]
    fn length_is_counted_in_characters() {
        assert!(Prompt::parse(&"é".repeat(512)).is_ok());
        assert_eq!(
            Prompt::parse(&"é".repeat(513)),
            Err(PromptError::TooLong { chars: 513 })
        );
    }

    #[test]
    fn control_characters_are_rejected_with_their_position() {
        assert_eq!(
            Prompt::parse("ab\u{7}c"),
            Err(PromptError::ControlCharacter {
                code: 7,
                position: 3
            })
        );
        assert!(Prompt::parse("a\tb").is_err());
        assert!(Prompt::parse("a\r\nb").is_err());
    }
}
