//! Prompts read one per line, each checked by the same rule the functions
//! apply (`couch_contract::prompt`), so a line the worker would refuse is
//! reported here instead of ending in the dead-letter queue.

use std::io::BufRead;

pub use couch_contract::model::PromptRule;
pub use couch_contract::prompt::{Prompt, PromptError};

/// The rule prompts are checked with: the stack's model's when the client
/// knows it (`--model-id`, or `--stack` outputs), otherwise the loosest rule
/// of any known model (the worker still applies the real one).
pub fn rule_for(model_id: Option<&str>) -> Result<PromptRule, String> {
    match model_id {
        None => Ok(PromptRule::LOOSEST),
        Some(id) => PromptRule::for_model(id).ok_or_else(|| {
            format!(
                "model {id:?} is of no known family ({})",
                couch_contract::model::KNOWN_PREFIXES
            )
        }),
    }
}

/// One line of input: its number (from 1) and the prompt, or why it is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub number: usize,
    pub prompt: Result<Prompt, PromptError>,
}

/// Every line of `input`, checked.
pub fn lines(input: impl BufRead, rule: PromptRule) -> std::io::Result<Vec<Line>> {
    input
        .lines()
        .enumerate()
        .map(|(i, l)| {
            l.map(|text| Line {
                number: i + 1,
                prompt: Prompt::parse(&text, rule),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_numbered_and_checked() {
        let long = "x".repeat(513);
        let input = format!("one\n\n  two  \n{long}\n");
        let ls = lines(input.as_bytes(), PromptRule::TITAN).unwrap();
        assert_eq!(ls.len(), 4);
        assert_eq!(ls[1].number, 2);
        assert_eq!(ls[1].prompt, Err(PromptError::Empty));
        assert_eq!(ls[2].prompt.as_ref().unwrap().as_str(), "two");
        assert_eq!(
            ls[3].prompt,
            Err(PromptError::TooLong {
                chars: 513,
                limit: 512
            })
        );
        // Without the model, the loosest rule: the same line is a prompt.
        let ls = lines(input.as_bytes(), rule_for(None).unwrap()).unwrap();
        assert!(ls[3].prompt.is_ok());
    }

    #[test]
    fn the_rule_follows_the_model() {
        assert_eq!(
            rule_for(Some("amazon.nova-canvas-v1:0")),
            Ok(PromptRule::NOVA_CANVAS)
        );
        assert!(rule_for(Some("meta.llama3-8b")).is_err());
    }
}
