//! Prompts read one per line, each checked by the same rule the functions
//! apply (`couch_contract::prompt`), so a line the worker would refuse is
//! reported here instead of ending in the dead-letter queue.

use std::io::BufRead;

pub use couch_contract::prompt::{Prompt, PromptError};

/// One line of input: its number (from 1) and the prompt, or why it is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub number: usize,
    pub prompt: Result<Prompt, PromptError>,
}

/// Every line of `input`, checked.
pub fn lines(input: impl BufRead) -> std::io::Result<Vec<Line>> {
    input
        .lines()
        .enumerate()
        .map(|(i, l)| {
            l.map(|text| Line {
                number: i + 1,
                prompt: Prompt::parse(&text),
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
        let ls = lines(input.as_bytes()).unwrap();
        assert_eq!(ls.len(), 4);
        assert_eq!(ls[1].number, 2);
        assert_eq!(ls[1].prompt, Err(PromptError::Empty));
        assert_eq!(ls[2].prompt.as_ref().unwrap().as_str(), "two");
        assert_eq!(ls[3].prompt, Err(PromptError::TooLong { chars: 513 }));
    }
}
