//! GitHub's OIDC identity provider in IAM: one per account, shared by every
//! stack and tool that lets GitHub Actions assume roles. Bootstrap creates it
//! when missing and adopts it when present (it carries no ownership tags:
//! nobody owns it alone); it never deletes it.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use super::{AUDIENCE, GITHUB_OIDC_HOST};
use crate::aws::{ARN, Aws, Done, aws_error, error_code};
use crate::engine::{Attrs, Declared, DeleteOutcome, Fields, Live, Resource, ResourceError};

/// Its address in bootstrap's plan.
pub const ADDRESS: &str = "oidc_provider.github";
/// Whether the provider accepts tokens minted for STS.
const AUDIENCE_FIELD: &str = "accepts_sts_audience";

// Attributes the provider exports.
impl crate::kind::HasArn for GithubOidcProvider {}

pub struct GithubOidcProvider {
    declared: Declared,
    aws: Arc<Aws>,
}

impl GithubOidcProvider {
    pub fn new(aws: Arc<Aws>) -> Self {
        let fields: Fields = [
            ("url".to_owned(), json!(GITHUB_OIDC_HOST)),
            (AUDIENCE_FIELD.to_owned(), json!(true)),
        ]
        .into();
        GithubOidcProvider {
            declared: Declared::new(ADDRESS, GITHUB_OIDC_HOST, fields),
            aws,
        }
    }

    async fn arn(&self) -> Result<String, ResourceError> {
        let account = self.aws.account_id().await?;
        Ok(format!(
            "arn:{}:iam::{account}:oidc-provider/{GITHUB_OIDC_HOST}",
            self.aws.partition()
        ))
    }
}

#[async_trait]
impl Resource for GithubOidcProvider {
    fn declared(&self) -> &Declared {
        &self.declared
    }

    fn kind(&self) -> &'static str {
        "iam-oidc-provider"
    }

    /// Shared by the account: no stack's ownership tags.
    fn taggable(&self) -> bool {
        false
    }

    async fn predict(&self) -> Result<Attrs, ResourceError> {
        Ok([(ARN.to_owned(), self.arn().await?)].into())
    }

    async fn read(&self) -> Result<Option<Live>, ResourceError> {
        let arn = self.arn().await?;
        let got = self
            .aws
            .iam
            .get_open_id_connect_provider()
            .open_id_connect_provider_arn(&arn)
            .send()
            .await;
        let provider = match got {
            Ok(p) => p,
            Err(e) if error_code(&e) == Some("NoSuchEntity") => return Ok(None),
            Err(e) => return Err(aws_error(&format!("iam:GetOpenIDConnectProvider {arn}"), e)),
        };
        let url = provider.url().unwrap_or_default();
        let fields: Fields = [
            ("url".to_owned(), json!(url.trim_start_matches("https://"))),
            (
                AUDIENCE_FIELD.to_owned(),
                json!(provider.client_id_list().iter().any(|c| c == AUDIENCE)),
            ),
        ]
        .into();
        Ok(Some(Live {
            fields,
            attrs: [(ARN.to_owned(), arn)].into(),
            ..Live::default()
        }))
    }

    async fn create(&self, _desired: &Fields) -> Result<Live, ResourceError> {
        self.aws
            .iam
            .create_open_id_connect_provider()
            .url(format!("https://{GITHUB_OIDC_HOST}"))
            .client_id_list(AUDIENCE)
            .send()
            .await
            .done(&format!(
                "iam:CreateOpenIDConnectProvider {GITHUB_OIDC_HOST}"
            ))?;
        crate::aws::read_back(self.read().await?, &self.declared.address)
    }

    /// A provider made by someone else for other audiences: add STS's.
    async fn update(
        &self,
        live: &Live,
        _desired: &Fields,
        _changed: &BTreeSet<String>,
    ) -> Result<(), ResourceError> {
        let arn = live.attrs.get(ARN).cloned().unwrap_or(self.arn().await?);
        self.aws
            .iam
            .add_client_id_to_open_id_connect_provider()
            .open_id_connect_provider_arn(&arn)
            .client_id(AUDIENCE)
            .send()
            .await
            .done(&format!("iam:AddClientIDToOpenIDConnectProvider {arn}"))
    }

    async fn delete(&self, _live: &Live) -> Result<DeleteOutcome, ResourceError> {
        Ok(DeleteOutcome::Skipped(format!(
            "{GITHUB_OIDC_HOST} is shared by every stack of the account: left in place"
        )))
    }
}
