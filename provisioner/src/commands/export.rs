//! `provisioner export --format cloudformation`: the stack as a CloudFormation
//! template, and which local zip belongs at each code location. No AWS call.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use crate::cloudformation::export::{referenced_ids, template};
use crate::cloudformation::{CodeLocation, logical_id};

/// Template formats `export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Cloudformation,
}

/// Write the stack as a CloudFormation template (same physical names,
/// settings, tags and IAM policies); no AWS call. Says which local zip
/// belongs at each code location.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub file: super::StackFile,
    #[arg(long, value_enum)]
    pub format: Format,
    /// Write the template here [default: standard output].
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// The S3 bucket the function zips are uploaded to.
    #[arg(long, value_name = "BUCKET")]
    pub code_bucket: String,
    /// Key prefix: code lives at {PREFIX}/{function}/{CodeSha256 as hex}.zip.
    #[arg(long, value_name = "PREFIX", default_value = "")]
    pub code_prefix: String,
}

impl Args {
    /// Where the template says the code is.
    pub fn code(&self) -> CodeLocation {
        CodeLocation {
            bucket: self.code_bucket.clone(),
            prefix: self.code_prefix.clone(),
        }
    }
}

pub async fn run(args: &Args, inputs: &super::Inputs) -> Result<ExitCode> {
    let path = args.file.stack.as_path();
    let Format::Cloudformation = args.format;
    let session = super::Session::open(path, inputs).await?;
    let description = format!(
        "Couch Explorers stack {:?} ({}), exported by provisioner {} from {}. Physical names, settings, tags and IAM policies are those `provisioner apply` deploys.",
        session.stack.name,
        session.stack.region,
        env!("CARGO_PKG_VERSION"),
        path.display()
    );
    let exported = template(&description, &session.kinds, &session.outputs, &args.code())?;
    // Every reference must land on a resource of the template itself.
    let resources = exported.template["Resources"]
        .as_object()
        .context("the template has no resources")?;
    for id in referenced_ids(&exported.template) {
        if !resources.contains_key(&id) {
            bail!("internal error: the template refers to {id}, which it does not define");
        }
    }
    let text = serde_json::to_string_pretty(&exported.template)? + "\n";
    match &args.out {
        Some(out) => {
            std::fs::write(out, &text)
                .with_context(|| format!("cannot write {}", out.display()))?;
            eprintln!(
                "Wrote {} ({} CloudFormation resources for the {} declared in {}).",
                out.display(),
                resources.len(),
                session
                    .kinds
                    .iter()
                    .filter(|e| e.managed() && !e.declared().absent)
                    .count(),
                path.display()
            );
        }
        None => print!("{text}"),
    }
    eprintln!("Upload the function code where the template expects it, before creating the stack:");
    for u in &exported.uploads {
        eprintln!(
            "  {} -> s3://{}/{}   (aws s3 cp {} s3://{}/{})",
            u.local.display(),
            u.bucket,
            u.key,
            u.local.display(),
            u.bucket,
            u.key
        );
    }
    eprintln!(
        "Logical ids are the provisioner's addresses in CamelCase (e.g. {} = {}).",
        crate::declare::QUEUE,
        logical_id(crate::declare::QUEUE)
    );
    Ok(ExitCode::SUCCESS)
}
