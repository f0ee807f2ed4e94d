//! `provisioner outputs`: the deployed stack's identifiers, read live.

use std::process::ExitCode;

use anyhow::Result;

/// Print the deployed stack's identifiers (queue URL, ARNs, ...).
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub file: super::StackFile,
    /// Print them as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: &Args, inputs: &super::Inputs) -> Result<ExitCode> {
    let (path, json) = (args.file.stack.as_path(), args.json);
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
