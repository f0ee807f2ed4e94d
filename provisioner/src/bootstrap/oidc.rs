//! GitHub's OIDC identity provider in IAM: one per account, shared by every
//! stack and tool that lets GitHub Actions assume roles. Bootstrap creates it
//! when missing and adopts it when present (it carries no ownership tags:
//! nobody owns it alone); it never deletes it.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{AUDIENCE, GITHUB_OIDC_HOST};
use crate::aws::{ARN, Aws, Done, aws_error};
use crate::engine::retry;
use crate::engine::{
    Attrs, Declared, DeleteOutcome, Fields, Live, Resource, ResourceError, TypedKind, Update,
    fields_of,
};

/// Its address in bootstrap's plan.
pub const ADDRESS: &str = "oidc_provider.github";
/// The provider as declared: GitHub's issuer, accepting tokens minted for STS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderSpec {
    /// The issuer's host (IAM's URL without `https://`).
    pub url: String,
    /// Whether the provider accepts tokens minted for STS.
    pub accepts_sts_audience: bool,
}

// Attributes the provider exports.
impl crate::kind::HasArn for GithubOidcProvider {}

pub struct GithubOidcProvider {
    declared: Declared,
    aws: Arc<Aws>,
}

impl GithubOidcProvider {
    pub fn new(aws: Arc<Aws>) -> Self {
        let spec = ProviderSpec {
            url: GITHUB_OIDC_HOST.to_owned(),
            accepts_sts_audience: true,
        };
        GithubOidcProvider {
            declared: Declared::of(ADDRESS, GITHUB_OIDC_HOST, &spec),
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
impl TypedKind for GithubOidcProvider {
    type Spec = ProviderSpec;
    const KIND: &'static str = "iam-oidc-provider";

    fn declared(&self) -> &Declared {
        &self.declared
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
        // NoSuchEntity reads as absent.
        let provider = self
            .aws
            .iam
            .get_open_id_connect_provider()
            .open_id_connect_provider_arn(&arn)
            .send()
            .await
            .map_err(|e| aws_error(&format!("iam:GetOpenIDConnectProvider {arn}"), e))?;
        let url = provider.url().unwrap_or_default();
        Ok(Some(Live {
            fields: fields_of(&ProviderSpec {
                url: url.trim_start_matches("https://").to_owned(),
                accepts_sts_audience: provider.client_id_list().iter().any(|c| c == AUDIENCE),
            }),
            attrs: [(ARN.to_owned(), arn)].into(),
            ..Live::default()
        }))
    }

    async fn create(&self, spec: &ProviderSpec, _: &Fields) -> Result<Live, ResourceError> {
        retry::call(|| async {
            self.aws
                .iam
                .create_open_id_connect_provider()
                .url(format!("https://{}", spec.url))
                .client_id_list(AUDIENCE)
                .send()
                .await
                .done(&format!("iam:CreateOpenIDConnectProvider {}", spec.url))
        })
        .await?;
        crate::aws::read_back(Resource::read(self).await?, &self.declared.address)
    }

    /// A provider made by someone else for other audiences: add STS's.
    async fn update(&self, change: &Update<'_, ProviderSpec>) -> Result<(), ResourceError> {
        let arn = match change.live.attrs.get(ARN) {
            Some(arn) => arn.clone(),
            None => self.arn().await?,
        };
        retry::call(|| async {
            self.aws
                .iam
                .add_client_id_to_open_id_connect_provider()
                .open_id_connect_provider_arn(&arn)
                .client_id(AUDIENCE)
                .send()
                .await
                .done(&format!("iam:AddClientIDToOpenIDConnectProvider {arn}"))
        })
        .await
    }

    async fn delete(&self, _live: &Live) -> Result<DeleteOutcome, ResourceError> {
        Ok(DeleteOutcome::Skipped(format!(
            "{GITHUB_OIDC_HOST} is shared by every stack of the account: left in place"
        )))
    }
}

/// Made by `bootstrap` (by a person), never by the stack: not in its template.
impl crate::kind::Export for GithubOidcProvider {
    fn cloudformation(
        &self,
        _code: &crate::kind::CodeLocation,
    ) -> Result<Vec<crate::kind::Part>, ResourceError> {
        Ok(Vec::new())
    }
    fn cloudformation_attr(&self, _id: &str, _attr: &str) -> Option<String> {
        None
    }
}

/// What `bootstrap`'s calls on the provider take (a person runs it; no CI role
/// is given these).
impl crate::kind::Access for GithubOidcProvider {
    fn read_access(&self) -> Vec<crate::kind::Grant> {
        vec![crate::kind::Grant::on(
            &["iam:GetOpenIDConnectProvider"],
            vec![crate::kind::own(self, ARN)],
        )]
    }
    fn write_access(&self) -> Vec<crate::kind::Grant> {
        vec![crate::kind::Grant::on(
            &[
                "iam:CreateOpenIDConnectProvider",
                "iam:AddClientIDToOpenIDConnectProvider",
            ],
            vec![crate::kind::own(self, ARN)],
        )]
    }
    fn held_from_ci(&self) -> bool {
        true
    }
}
