//! The stack's outputs as `provisioner outputs --json` writes them (`--stack
//! FILE`): the queue, the images bucket and prefix, and the model the
//! functions use, so the client checks prompts with that model's rule.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
pub use couch_contract::outputs::Output;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outputs(BTreeMap<String, Option<String>>);

impl Outputs {
    pub fn read(path: &Path) -> Result<Outputs> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the stack outputs {}", path.display()))?;
        Outputs::parse(&text).with_context(|| {
            format!(
                "{} is not `provisioner outputs --json` output",
                path.display()
            )
        })
    }

    pub fn parse(text: &str) -> Result<Outputs> {
        Ok(Outputs(serde_json::from_str(text)?))
    }

    /// An output's value (`None` when absent or not deployed).
    pub fn get(&self, output: Output) -> Option<String> {
        self.0.get(output.name()).cloned().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_provisioner_outputs_writes() {
        let o = Outputs::parse(
            r#"{"model_id": "stability.stable-image-core-v1:1", "queue_url": "http://q", "api_url": null}"#,
        )
        .unwrap();
        assert_eq!(
            o.get(Output::ModelId).as_deref(),
            Some("stability.stable-image-core-v1:1")
        );
        assert_eq!(o.get(Output::ApiUrl), None);
        assert_eq!(o.get(Output::DlqUrl), None);
        assert!(Outputs::parse("[1]").is_err());
    }
}
