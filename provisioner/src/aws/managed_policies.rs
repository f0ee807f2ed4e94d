//! The stack's permissions boundary: a customer managed IAM policy that every
//! role the stack declares carries as its `PermissionsBoundary`, so no role
//! can ever do more than the union of what the stack's roles need, whatever
//! its own policy says (IAM user guide, "Permissions boundaries for IAM
//! entities": the effective permissions are the intersection of the
//! identity-based policies and the boundary).
//!
//! Owned ([`ManagedPolicy::new`], `{stack}-boundary`): created by the human
//! who applies the stack first (or by `bootstrap`, which converges the same
//! declaration), then only read by CI: [`Access::held_from_ci`] keeps its
//! writes out of the apply and preview roles, so no workflow run can widen
//! the ceiling it is held to. Referenced ([`ManagedPolicy::referenced`]): a
//! preview stack's boundary, `{file}-preview-boundary`, made by `bootstrap`;
//! the plan fails with what to run when it is missing.
//!
//! A new document is a new default version (`CreatePolicyVersion`); IAM keeps
//! at most five versions (IAM user guide, "Versioning IAM policies"), so the
//! oldest non-default one is deleted first when five exist.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::policies::{PolicyDocument, parse_document, permissions_in};
use super::roles::iam_tags;
use super::{
    ARN, Aws, Done, NAME, aws_error, create_or_converge, error_code, part_of_existing, read_back,
    tags, with_arn,
};
use crate::engine::retry;
use crate::engine::{
    Attrs, Declared, DeleteOutcome, Fields, Finding, Live, Permission, Resource, ResourceError,
    Tagging, Tags, TypedKind, Update, spec_of,
};
use crate::kind::export::{CodeLocation, Export, Part, object};
use crate::kind::{Access, Document, DocumentType, Grant, own};

/// The document's name in the plan's permission section.
pub const BOUNDARY_POLICY: &str = "boundary policy";

/// IAM's limit on a managed policy's versions.
const MAX_VERSIONS: usize = 5;

/// A managed policy as declared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManagedPolicySpec {
    pub document: PolicyDocument,
    pub tags: Tags,
}
crate::engine::fields!(ManagedPolicySpec { DOCUMENT: document });

pub struct ManagedPolicy {
    declared: Declared,
    /// Made by someone else (`bootstrap`): read, never changed.
    referenced: Option<String>,
    aws: Arc<Aws>,
}

// Attributes a managed policy exports.
/// `arn:aws:iam::{account}:policy/{name}`.
impl crate::kind::HasArn for ManagedPolicy {}

impl ManagedPolicy {
    pub fn new(address: &str, name: String, spec: &ManagedPolicySpec, aws: Arc<Aws>) -> Self {
        let declared = Declared::of(address, name.clone(), spec).knowing(NAME, name);
        ManagedPolicy {
            declared,
            referenced: None,
            aws,
        }
    }

    /// A policy the stack uses but never changes; `made_by` says what makes
    /// it (shown when it is missing).
    pub fn referenced(address: &str, name: String, made_by: String, aws: Arc<Aws>) -> Self {
        let declared = Declared::new(address, name.clone(), Fields::new()).knowing(NAME, name);
        ManagedPolicy {
            declared,
            referenced: Some(made_by),
            aws,
        }
    }

    async fn arn(&self) -> Result<String, ResourceError> {
        let account = self.aws.account_id().await?;
        Ok(format!(
            "arn:{}:iam::{account}:policy/{}",
            self.aws.partition(),
            self.declared.name
        ))
    }

    fn what(&self, call: &str) -> String {
        format!("iam:{call} {}", self.declared.name)
    }

    fn json(doc: &PolicyDocument) -> Result<String, ResourceError> {
        serde_json::to_string(doc)
            .map_err(|e| ResourceError::new(format!("policy document does not serialise: {e}")))
    }

    /// Every version's id, oldest first, and which is the default.
    async fn versions(&self, arn: &str) -> Result<Vec<(String, bool)>, ResourceError> {
        let mut out = Vec::new();
        let mut marker = None;
        loop {
            let page = self
                .aws
                .iam
                .list_policy_versions()
                .policy_arn(arn)
                .set_marker(marker)
                .send()
                .await
                .map_err(|e| aws_error(&self.what("ListPolicyVersions"), e))?;
            for v in page.versions() {
                if let Some(id) = v.version_id() {
                    out.push((id.to_owned(), v.is_default_version()));
                }
            }
            match (page.is_truncated(), page.marker) {
                (true, Some(m)) => marker = Some(m),
                _ => break,
            }
        }
        // `v12` after `v9`: by number.
        out.sort_by_key(|(id, _)| id.trim_start_matches('v').parse::<u64>().unwrap_or(0));
        Ok(out)
    }

    async fn delete_version(&self, arn: &str, id: &str) -> Result<(), ResourceError> {
        match self
            .aws
            .iam
            .delete_policy_version()
            .policy_arn(arn)
            .version_id(id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if error_code(&e) == Some("NoSuchEntity") => Ok(()),
            Err(e) => Err(aws_error(&self.what("DeletePolicyVersion"), e)),
        }
    }
}

#[async_trait]
impl TypedKind for ManagedPolicy {
    type Spec = ManagedPolicySpec;
    const KIND: &'static str = "iam-managed-policy";

    fn declared(&self) -> &Declared {
        &self.declared
    }
    fn tagging(&self) -> Option<&dyn Tagging> {
        Some(self)
    }
    fn managed(&self) -> bool {
        self.referenced.is_none()
    }
    fn taggable(&self) -> bool {
        self.referenced.is_none()
    }

    /// The boundary's statements: what any role bounded by it may at most do.
    fn permissions(&self, fields: &Fields) -> Vec<Permission> {
        match fields.get("document") {
            Some(doc) => permissions_in(BOUNDARY_POLICY, doc),
            None => Vec::new(),
        }
    }

    async fn predict(&self) -> Result<Attrs, ResourceError> {
        Ok(with_arn(&self.declared, self.arn().await?))
    }

    async fn read(&self) -> Result<Option<Live>, ResourceError> {
        let arn = self.arn().await?;
        let policy = match self.aws.iam.get_policy().policy_arn(&arn).send().await {
            Ok(out) => out.policy,
            Err(e) if error_code(&e) == Some("NoSuchEntity") => None,
            Err(e) => return Err(aws_error(&self.what("GetPolicy"), e)),
        };
        let Some(policy) = policy else {
            return match &self.referenced {
                // Missing: the plan says what makes it, before any change.
                Some(made_by) => Ok(Some(Live {
                    attrs: with_arn(&self.declared, arn),
                    findings: vec![Finding::Problem(format!(
                        "the managed policy {} does not exist; {made_by}",
                        self.declared.name
                    ))],
                    ..Live::default()
                })),
                None => Ok(None),
            };
        };
        let mut live = Live {
            attrs: with_arn(&self.declared, arn.clone()),
            ..Live::default()
        };
        if self.referenced.is_some() {
            return Ok(Some(live));
        }
        let version = policy.default_version_id().unwrap_or("v1");
        let document = self
            .aws
            .iam
            .get_policy_version()
            .policy_arn(&arn)
            .version_id(version)
            .send()
            .await
            // The policy exists: its default version missing (replaced
            // between the two calls) is no reason to read the policy as
            // absent, which would plan creating what exists.
            .map_err(|e| part_of_existing(aws_error(&self.what("GetPolicyVersion"), e)))?
            .policy_version
            .and_then(|v| v.document)
            .map(|d| parse_document(&d))
            .unwrap_or(Value::Null);
        live.fields.insert("document".into(), document);
        // GetPolicy carries the policy's tags: no ListPolicyTags needed.
        live.fields.insert(
            tags::FIELD.into(),
            tags::to_value(policy.tags().iter().map(|t| (t.key(), t.value()))),
        );
        Ok(Some(live))
    }

    async fn create(
        &self,
        spec: &ManagedPolicySpec,
        desired: &Fields,
    ) -> Result<Live, ResourceError> {
        // Made by an interrupted run (or by bootstrap meanwhile): converged on.
        create_or_converge(self, desired, || async {
            self.aws
                .iam
                .create_policy()
                .policy_name(&self.declared.name)
                .policy_document(Self::json(&spec.document)?)
                .description("Permissions boundary of a Couch Explorers stack's roles; managed by couch-provisioner")
                .set_tags(Some(iam_tags(spec.tags.clone())?))
                .send()
                .await
                .done(&self.what("CreatePolicy"))
        })
        .await?;
        read_back(
            Resource::read(self).await?,
            &format!("policy {}", self.declared.name),
        )
    }

    async fn update(&self, change: &Update<'_, ManagedPolicySpec>) -> Result<(), ResourceError> {
        if !change.has(ManagedPolicySpec::DOCUMENT) {
            return Ok(());
        }
        let arn = self.arn().await?;
        let versions = self.versions(&arn).await?;
        if versions.len() >= MAX_VERSIONS
            && let Some((oldest, _)) = versions.iter().find(|(_, default)| !default)
        {
            self.delete_version(&arn, oldest).await?;
        }
        let document = Self::json(&change.spec.document)?;
        // Not idempotent: retried only on answers that mean nothing was done
        // (throttled, conflict, propagating); a lost answer is an error, and
        // the next plan compares the document again.
        retry::call(|| async {
            self.aws
                .iam
                .create_policy_version()
                .policy_arn(&arn)
                .policy_document(&document)
                .set_as_default(true)
                .send()
                .await
                .done(&self.what("CreatePolicyVersion"))
        })
        .await
    }

    async fn delete(&self, _live: &Live) -> Result<DeleteOutcome, ResourceError> {
        let arn = self.arn().await?;
        // IAM deletes a policy only without its non-default versions.
        let versions = match self.versions(&arn).await {
            Ok(v) => v,
            Err(_) if Resource::read(self).await?.is_none() => return Ok(DeleteOutcome::Deleted),
            // It exists: a NotFound here must not read as "deleted".
            Err(e) => return Err(part_of_existing(e)),
        };
        for (id, default) in versions {
            if !default {
                self.delete_version(&arn, &id).await?;
            }
        }
        // DeleteConflict (still attached to a role being deleted) is waited out.
        retry::call(|| async {
            self.aws
                .iam
                .delete_policy()
                .policy_arn(&arn)
                .send()
                .await
                .done(&self.what("DeletePolicy"))
        })
        .await?;
        Ok(DeleteOutcome::Deleted)
    }
}

#[async_trait]
impl Tagging for ManagedPolicy {
    async fn tag(&self, live: &Live, set: Tags) -> Result<(), ResourceError> {
        self.aws
            .iam
            .tag_policy()
            .policy_arn(live.attrs.get(ARN).map_or("", String::as_str))
            .set_tags(Some(iam_tags(set)?))
            .send()
            .await
            .done(&format!("iam:TagPolicy {}", self.declared.name))
    }
    async fn untag(&self, live: &Live, keys: Vec<String>) -> Result<(), ResourceError> {
        self.aws
            .iam
            .untag_policy()
            .policy_arn(live.attrs.get(ARN).map_or("", String::as_str))
            .set_tag_keys(Some(keys))
            .send()
            .await
            .done(&format!("iam:UntagPolicy {}", self.declared.name))
    }
}

impl Export for ManagedPolicy {
    /// A referenced policy is not in the template (its ARN is known).
    fn cloudformation(&self, _code: &CodeLocation) -> Result<Vec<Part>, ResourceError> {
        use serde_json::json;
        if self.referenced.is_some() {
            return Ok(Vec::new());
        }
        let spec: ManagedPolicySpec = spec_of(&self.declared.address, &self.declared.fields)?;
        // AWS::IAM::ManagedPolicy has no Tags property.
        let properties = object([
            ("ManagedPolicyName", json!(self.declared.name)),
            (
                "Description",
                json!("Permissions boundary of a Couch Explorers stack's roles"),
            ),
            ("PolicyDocument", json!(spec.document)),
        ]);
        Ok(vec![Part::main("AWS::IAM::ManagedPolicy", properties)])
    }

    fn cloudformation_attr(&self, id: &str, attr: &str) -> Option<String> {
        // `Ref` of AWS::IAM::ManagedPolicy is its ARN; a referenced one's
        // ARN follows from its name and the account.
        match attr {
            ARN if self.referenced.is_none() => Some(format!("${{{id}}}")),
            ARN => Some(format!(
                "arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:policy/{}",
                self.declared.name
            )),
            _ => None,
        }
    }
}

impl Access for ManagedPolicy {
    fn documents(&self, fields: &Fields) -> Vec<Document> {
        match fields.get("document") {
            Some(doc) => vec![Document {
                name: BOUNDARY_POLICY.into(),
                // Read by IAM like an identity policy (actions on resources).
                kind: DocumentType::Identity,
                document: doc.clone(),
            }],
            None => Vec::new(),
        }
    }

    fn read_access(&self) -> Vec<Grant> {
        let mut actions = vec!["iam:GetPolicy"];
        if self.referenced.is_none() {
            actions.push("iam:GetPolicyVersion");
        }
        vec![Grant::on(&actions, vec![own(self, ARN)])]
    }

    fn write_access(&self) -> Vec<Grant> {
        if self.referenced.is_some() {
            return Vec::new();
        }
        vec![Grant::on(
            &[
                "iam:CreatePolicy",
                "iam:CreatePolicyVersion",
                "iam:ListPolicyVersions",
                "iam:DeletePolicyVersion",
                "iam:TagPolicy",
                "iam:UntagPolicy",
                "iam:DeletePolicy",
            ],
            vec![own(self, ARN)],
        )]
    }

    /// The ceiling of what CI may do: only a person (or `bootstrap`) changes it.
    fn held_from_ci(&self) -> bool {
        true
    }
}
