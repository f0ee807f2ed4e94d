//! `provisioner models`: the image-generating foundation models Bedrock offers
//! in a Region (`ListFoundationModels`, output modality IMAGE), with their
//! lifecycle, whether the functions speak their family, and the one the stack
//! declares marked. What to pick `model.id` from.

use std::process::ExitCode;

use anyhow::{Context, Result};
use aws_sdk_bedrock::types::{FoundationModelLifecycleStatus, ModelModality};
use aws_smithy_types::date_time::Format;
use couch_contract::model::{base_model_id, family_of};
use serde::Serialize;

use crate::aws::Aws;
use crate::stack::{self, DEFAULT_MODEL_REGION};

/// List the image models Bedrock offers in a Region (lifecycle, whether
/// the functions speak their family), marking the one the stack declares.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The Region [default: the stack's model.region, else us-west-2].
    #[arg(long)]
    pub region: Option<String>,
    /// Mark this stack file's model (and default to its model.region).
    #[arg(long, short)]
    pub stack: Option<std::path::PathBuf>,
    /// Print them as JSON.
    #[arg(long)]
    pub json: bool,
}

/// One line of the listing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Listed {
    pub model_id: String,
    pub name: String,
    pub provider: String,
    /// `ACTIVE` or `LEGACY`.
    pub lifecycle: String,
    pub end_of_life: Option<String>,
    /// The family the functions would speak to it in (`None`: not supported).
    pub family: Option<String>,
    /// The stack's `model.id` names it (directly or through a profile).
    pub declared: bool,
}

pub async fn run(args: &Args, name: Option<&str>) -> Result<ExitCode> {
    let declared = match &args.stack {
        Some(path) => Some(stack::load_named(path, name)?.model),
        None => None,
    };
    let region = args
        .region
        .clone()
        .or_else(|| declared.as_ref().map(|m| m.region.clone()))
        .unwrap_or_else(|| DEFAULT_MODEL_REGION.to_owned());
    let aws = Aws::load(&region).await;
    let out = aws
        .bedrock
        .list_foundation_models()
        .by_output_modality(ModelModality::Image)
        .send()
        .await
        .map_err(|e| crate::aws::aws_error(&format!("bedrock:ListFoundationModels in {region}"), e))
        .context("listing Bedrock's image models")?;
    let declared_id = declared.as_ref().map(|m| base_model_id(&m.id).to_owned());
    let mut listed: Vec<Listed> = out
        .model_summaries()
        .iter()
        .map(|m| {
            let life = m.model_lifecycle();
            Listed {
                model_id: m.model_id().to_owned(),
                name: m.model_name().unwrap_or_default().to_owned(),
                provider: m.provider_name().unwrap_or_default().to_owned(),
                lifecycle: life
                    .map(|l| l.status().as_str().to_owned())
                    .unwrap_or_else(|| FoundationModelLifecycleStatus::Active.as_str().to_owned()),
                end_of_life: life
                    .and_then(|l| l.end_of_life_time())
                    .and_then(|t| t.fmt(Format::DateTime).ok())
                    .map(|d| d.chars().take(10).collect()),
                family: family_of(m.model_id()).map(|f| f.name().to_owned()),
                declared: declared_id.as_deref() == Some(m.model_id()),
            }
        })
        .collect();
    listed.sort_by(|a, b| (&a.provider, &a.model_id).cmp(&(&b.provider, &b.model_id)));
    if args.json {
        println!("{}", serde_json::to_string_pretty(&listed)?);
    } else {
        print!("{}", render(&region, &listed));
        if let Some(id) = &declared_id
            && !listed.iter().any(|l| &l.model_id == id)
        {
            println!("The stack declares {id}, which Bedrock does not offer in {region}.");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The listing as a table.
pub fn render(region: &str, listed: &[Listed]) -> String {
    let mut out = format!("Image models in {region}:\n");
    let width = listed.iter().map(|l| l.model_id.len()).max().unwrap_or(8);
    for l in listed {
        let life = match (&l.lifecycle[..], &l.end_of_life) {
            ("LEGACY", Some(eol)) => format!("LEGACY (end-of-life {eol})"),
            (s, _) => s.to_owned(),
        };
        let family = l.family.as_deref().unwrap_or("not supported");
        let mark = if l.declared { "   <- declared" } else { "" };
        out.push_str(&format!(
            "  {:<width$}  {:<12}  {:<28}  {family}{mark}\n",
            l.model_id, l.provider, life
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_marks_the_declared_model_and_unknown_families() {
        let l = |id: &str, life: &str, eol: Option<&str>, declared| Listed {
            model_id: id.into(),
            name: String::new(),
            provider: "P".into(),
            lifecycle: life.into(),
            end_of_life: eol.map(str::to_owned),
            family: family_of(id).map(|f| f.name().to_owned()),
            declared,
        };
        let text = render(
            "us-west-2",
            &[
                l(
                    "amazon.nova-canvas-v1:0",
                    "LEGACY",
                    Some("2026-09-30"),
                    false,
                ),
                l("stability.stable-image-core-v1:1", "ACTIVE", None, true),
                l("other.painter-v1", "ACTIVE", None, false),
            ],
        );
        assert!(text.contains("LEGACY (end-of-life 2026-09-30)"), "{text}");
        assert!(text.contains("stability   <- declared"), "{text}");
        assert!(text.contains("not supported"), "{text}");
    }
}
