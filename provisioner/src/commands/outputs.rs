//! `provisioner outputs`: the deployed stack's identifiers, read live.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

pub async fn run(path: &Path, json: bool, inputs: &super::Inputs) -> Result<ExitCode> {
    let session = super::Session::open(path, inputs).await?;
    let snapshot = session.read().await?;
    let outputs = session.outputs(&snapshot);
    let missing: Vec<&str> = outputs
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(k, _)| k.as_str())
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&outputs)?);
    } else {
        let width = outputs.keys().map(String::len).max().unwrap_or(0);
        for (k, v) in &outputs {
            println!("{k:<width$} = {}", v.as_deref().unwrap_or("(not deployed)"));
        }
    }
    if missing.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "Error: stack {:?} is not fully deployed ({} unknown); run `provisioner apply`",
            session.stack.name,
            missing.join(", ")
        );
        Ok(ExitCode::from(1))
    }
}
