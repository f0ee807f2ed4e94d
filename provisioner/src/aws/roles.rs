//! IAM roles of the functions: a trust policy for one service, exactly one
//! inline policy derived from the declaration, nothing attached.
//!
//! IAM returns documents URL-encoded; they are compared as parsed JSON
//! ([`super::policies::parse_document`]). Inline policies other than ours and
//! attached managed policies are fields too (declared empty), so a grant added
//! by hand shows in the plan and apply removes it: the role stays least
//! privilege.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_iam::types::{Role, Tag};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::policies::{PolicyDocument, parse_document, permissions_in};
use super::{
    ARN, Aws, Done, NAME, aws_error, create_or_converge, error_code, gone_already, read_back, tags,
    with_arn,
};
use crate::engine::retry;
use crate::engine::{
    Attrs, Declared, DeleteOutcome, Field, Fields, Live, Permission, Resource, ResourceError,
    Tagging, Tags, Text, TypedKind, Update, spec_of,
};
use crate::kind::export::{CodeLocation, Export, Part, object, tag_list};
use crate::kind::{Access, Document, DocumentType, Grant, own};

/// The name of the one inline policy the provisioner manages on each role.
pub const POLICY_NAME: &str = "least-privilege";

/// The documents of a role, as the plan's permission section names them.
pub const TRUST_POLICY: &str = "trust policy";
pub const INLINE_POLICY: &str = "inline policy";

/// A role as declared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleSpec {
    pub assume_role_policy: PolicyDocument,
    /// The inline policy named [`POLICY_NAME`].
    pub policy: PolicyDocument,
    /// Other inline policies' names (declared: none).
    pub other_inline_policies: Vec<String>,
    /// Attached managed policies' ARNs (declared: none).
    pub managed_policies: Vec<String>,
    /// The managed policy that caps what the role may do, whatever its own
    /// policies say (the stack's boundary; `None` only for the roles
    /// `bootstrap` makes, which a person creates).
    pub permissions_boundary: Option<Text>,
    pub tags: Tags,
}
crate::engine::fields!(RoleSpec {
    TRUST: assume_role_policy,
    POLICY: policy,
    OTHER_INLINE: other_inline_policies,
    MANAGED: managed_policies,
    BOUNDARY: permissions_boundary,
});

/// The documents of a role, as the plan's permission section names them.
pub const PERMISSIONS_BOUNDARY: &str = "permissions boundary";

/// The role writes IAM lets a policy hold to a permissions boundary with the
/// condition key `iam:PermissionsBoundary` (Service Authorization Reference,
/// "Actions defined by AWS Identity and Access Management": CreateRole,
/// PutRolePolicy, DeleteRolePolicy, DetachRolePolicy, AttachRolePolicy,
/// PutRolePermissionsBoundary, DeleteRolePermissionsBoundary list it). The
/// apply and preview roles get these only with the condition, so a role they
/// create or write always carries the stack's boundary (IAM user guide,
/// "Permissions boundaries for IAM entities", delegating role creation).
/// `DeleteRolePermissionsBoundary` is never granted: nothing CI runs may
/// lift a boundary.
pub const BOUNDED_WRITES: [&str; 5] = [
    "iam:CreateRole",
    "iam:PutRolePolicy",
    "iam:DeleteRolePolicy",
    "iam:DetachRolePolicy",
    "iam:PutRolePermissionsBoundary",
];

pub struct IamRole {
    declared: Declared,
    aws: Arc<Aws>,
}

// Attributes a role exports.
/// `arn:aws:iam::{account}:role/{name}`.
impl crate::kind::HasArn for IamRole {}
impl crate::kind::HasName for IamRole {}

/// Tags as IAM takes them (roles and managed policies alike).
pub(super) fn iam_tags(
    tags: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<Tag>, ResourceError> {
    tags.into_iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| ResourceError::new(format!("invalid tag: {e}")))
        })
        .collect()
}

fn json(doc: &PolicyDocument) -> Result<String, ResourceError> {
    serde_json::to_string(doc)
        .map_err(|e| ResourceError::new(format!("policy document does not serialise: {e}")))
}

impl IamRole {
    pub fn new(address: &str, name: String, spec: &RoleSpec, aws: Arc<Aws>) -> Self {
        let declared = Declared::of(address, name.clone(), spec).knowing(NAME, name);
        IamRole { declared, aws }
    }

    /// A role the stack no longer wants (an optional section left out):
    /// apply deletes it if this stack made it.
    /// `boundary`: what CI may create it with (its writes stay held to it).
    pub fn absent(
        address: &str,
        name: String,
        boundary: Option<Text>,
        tags: Tags,
        aws: Arc<Aws>,
    ) -> Self {
        let spec = RoleSpec {
            assume_role_policy: PolicyDocument::new(Vec::new()),
            policy: PolicyDocument::new(Vec::new()),
            other_inline_policies: Vec::new(),
            managed_policies: Vec::new(),
            permissions_boundary: boundary,
            tags,
        };
        let mut role = IamRole::new(address, name, &spec, aws);
        role.declared = role.declared.absent();
        role
    }

    async fn arn(&self) -> Result<String, ResourceError> {
        let account = self.aws.account_id().await?;
        Ok(format!(
            "arn:{}:iam::{account}:role/{}",
            self.aws.partition(),
            self.declared.name
        ))
    }

    fn what(&self, call: &str) -> String {
        format!("iam:{call} {}", self.declared.name)
    }

    async fn put_policy(&self, doc: &PolicyDocument) -> Result<(), ResourceError> {
        let document = json(doc)?;
        retry::call(|| async {
            self.aws
                .iam
                .put_role_policy()
                .role_name(&self.declared.name)
                .policy_name(POLICY_NAME)
                .policy_document(&document)
                .send()
                .await
                .done(&self.what("PutRolePolicy"))
        })
        .await
    }

    /// Deletes inline policies; one already gone is done.
    async fn delete_inline(&self, names: &[String]) -> Result<(), ResourceError> {
        for policy in names {
            let deleted = retry::call(|| async {
                self.aws
                    .iam
                    .delete_role_policy()
                    .role_name(&self.declared.name)
                    .policy_name(policy)
                    .send()
                    .await
                    .done(&self.what("DeleteRolePolicy"))
            })
            .await;
            gone_already(deleted)?;
        }
        Ok(())
    }

    /// Detaches managed policies; one already detached is done.
    async fn detach(&self, arns: &[String]) -> Result<(), ResourceError> {
        for arn in arns {
            let detached = retry::call(|| async {
                self.aws
                    .iam
                    .detach_role_policy()
                    .role_name(&self.declared.name)
                    .policy_arn(arn)
                    .send()
                    .await
                    .done(&self.what("DetachRolePolicy"))
            })
            .await;
            gone_already(detached)?;
        }
        Ok(())
    }

    fn strings(live: &Live, field: Field<RoleSpec>) -> Vec<String> {
        live.fields
            .get(field.name())
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[async_trait]
impl TypedKind for IamRole {
    type Spec = RoleSpec;
    const KIND: &'static str = "iam-role";

    fn declared(&self) -> &Declared {
        &self.declared
    }
    fn tagging(&self) -> Option<&dyn Tagging> {
        Some(self)
    }

    /// Who may assume it, what its inline policy allows, and what is attached.
    fn permissions(&self, fields: &Fields) -> Vec<Permission> {
        let mut out = permissions_in(TRUST_POLICY, &fields["assume_role_policy"]);
        out.extend(permissions_in(INLINE_POLICY, &fields["policy"]));
        let named = |document: &str, key: &str| -> Vec<Permission> {
            fields[key]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|name| Permission {
                    document: format!("{document} {name}"),
                    effect: "Allow".into(),
                    actions: vec!["(whatever it allows)".into()],
                    resources: Vec::new(),
                    principals: Vec::new(),
                    conditions: Vec::new(),
                })
                .collect()
        };
        out.extend(named("managed policy", "managed_policies"));
        out.extend(named("other inline policy", "other_inline_policies"));
        // A boundary takes away whatever it does not allow: shown as a Deny,
        // so adding one narrows and removing or changing one broadens.
        if let Some(boundary) = fields.get("permissions_boundary").and_then(Value::as_str) {
            out.push(Permission {
                document: PERMISSIONS_BOUNDARY.into(),
                effect: "Deny".into(),
                actions: vec![format!("(whatever {boundary} does not allow)")],
                resources: Vec::new(),
                principals: Vec::new(),
                conditions: Vec::new(),
            });
        }
        out
    }

    async fn predict(&self) -> Result<Attrs, ResourceError> {
        Ok(with_arn(&self.declared, self.arn().await?))
    }

    async fn read(&self) -> Result<Option<Live>, ResourceError> {
        let iam = &self.aws.iam;
        let name = &self.declared.name;
        // GetRole carries the role's tags: no ListRoleTags needed.
        let (role, policy, inline, attached) = tokio::join!(
            iam.get_role().role_name(name).send(),
            iam.get_role_policy()
                .role_name(name)
                .policy_name(POLICY_NAME)
                .send(),
            // Every page (IAM pages at 100 by default, and may cut shorter:
            // IAM API reference, ListRolePolicies "IsTruncated").
            async {
                iam.list_role_policies()
                    .role_name(name)
                    .into_paginator()
                    .items()
                    .send()
                    .collect::<Result<Vec<String>, _>>()
                    .await
            },
            async {
                iam.list_attached_role_policies()
                    .role_name(name)
                    .into_paginator()
                    .items()
                    .send()
                    .collect::<Result<Vec<_>, _>>()
                    .await
            },
        );
        let gone = |code: Option<&str>| code == Some("NoSuchEntity");
        let role = match role {
            Ok(r) => r.role,
            Err(e) if gone(error_code(&e)) => return Ok(None),
            Err(e) => return Err(aws_error(&self.what("GetRole"), e)),
        };
        let Some(role) = role else { return Ok(None) };
        let policy = match policy {
            Ok(p) => parse_document(&p.policy_document),
            Err(e) if gone(error_code(&e)) => Value::Null,
            Err(e) => return Err(aws_error(&self.what("GetRolePolicy"), e)),
        };
        let inline: Vec<String> = match inline {
            Ok(l) => l,
            Err(e) if gone(error_code(&e)) => return Ok(None),
            Err(e) => return Err(aws_error(&self.what("ListRolePolicies"), e)),
        };
        let attached: Vec<String> = match attached {
            Ok(a) => a.into_iter().filter_map(|p| p.policy_arn).collect(),
            Err(e) if gone(error_code(&e)) => return Ok(None),
            Err(e) => return Err(aws_error(&self.what("ListAttachedRolePolicies"), e)),
        };
        let mut live = Live {
            fields: live_fields(&role, policy, inline, attached),
            ..Live::default()
        };
        live.attrs.insert(ARN.into(), role.arn().to_owned());
        live.attrs.insert(NAME.into(), self.declared.name.clone());
        Ok(Some(live))
    }

    async fn create(&self, spec: &RoleSpec, desired: &Fields) -> Result<Live, ResourceError> {
        let trust = json(&spec.assume_role_policy)?;
        // One an interrupted run created is converged on (its policy with it).
        let created = create_or_converge(self, desired, || async {
            self.aws
                .iam
                .create_role()
                .role_name(&self.declared.name)
                .assume_role_policy_document(&trust)
                .description(
                    "Execution role of a Couch Explorers function; managed by couch-provisioner",
                )
                .set_permissions_boundary(
                    spec.permissions_boundary
                        .as_ref()
                        .map(|b| b.as_str().to_owned()),
                )
                .set_tags(Some(iam_tags(spec.tags.clone())?))
                .send()
                .await
                .done(&self.what("CreateRole"))
        })
        .await?;
        if created {
            self.put_policy(&spec.policy).await?;
        }
        read_back(
            Resource::read(self).await?,
            &format!("role {}", self.declared.name),
        )
    }

    async fn update(&self, change: &Update<'_, RoleSpec>) -> Result<(), ResourceError> {
        let (spec, live) = (change.spec, change.live);
        let name = &self.declared.name;
        // First: every later write to the role is allowed (to CI) only once
        // the role carries its boundary.
        if change.has(RoleSpec::BOUNDARY) {
            retry::call(|| async {
                match &spec.permissions_boundary {
                    Some(arn) => self
                        .aws
                        .iam
                        .put_role_permissions_boundary()
                        .role_name(name)
                        .permissions_boundary(arn.as_str())
                        .send()
                        .await
                        .done(&self.what("PutRolePermissionsBoundary")),
                    None => self
                        .aws
                        .iam
                        .delete_role_permissions_boundary()
                        .role_name(name)
                        .send()
                        .await
                        .done(&self.what("DeleteRolePermissionsBoundary")),
                }
            })
            .await?;
        }
        if change.has(RoleSpec::TRUST) {
            let trust = json(&spec.assume_role_policy)?;
            retry::call(|| async {
                self.aws
                    .iam
                    .update_assume_role_policy()
                    .role_name(name)
                    .policy_document(&trust)
                    .send()
                    .await
                    .done(&self.what("UpdateAssumeRolePolicy"))
            })
            .await?;
        }
        if change.has(RoleSpec::POLICY) {
            self.put_policy(&spec.policy).await?;
        }
        if change.has(RoleSpec::OTHER_INLINE) {
            let extra: Vec<String> = IamRole::strings(live, RoleSpec::OTHER_INLINE)
                .into_iter()
                .filter(|p| !spec.other_inline_policies.contains(p))
                .collect();
            self.delete_inline(&extra).await?;
        }
        if change.has(RoleSpec::MANAGED) {
            let extra: Vec<String> = IamRole::strings(live, RoleSpec::MANAGED)
                .into_iter()
                .filter(|p| !spec.managed_policies.contains(p))
                .collect();
            self.detach(&extra).await?;
        }
        Ok(())
    }

    async fn delete(&self, live: &Live) -> Result<DeleteOutcome, ResourceError> {
        // IAM refuses to delete a role that still has policies.
        let mut inline = IamRole::strings(live, RoleSpec::OTHER_INLINE);
        inline.push(POLICY_NAME.to_owned());
        self.delete_inline(&inline).await?;
        self.detach(&IamRole::strings(live, RoleSpec::MANAGED))
            .await?;
        retry::call(|| async {
            self.aws
                .iam
                .delete_role()
                .role_name(&self.declared.name)
                .send()
                .await
                .done(&self.what("DeleteRole"))
        })
        .await?;
        Ok(DeleteOutcome::Deleted)
    }
}

#[async_trait]
impl Tagging for IamRole {
    async fn tag(&self, _live: &Live, set: Tags) -> Result<(), ResourceError> {
        self.aws
            .iam
            .tag_role()
            .role_name(&self.declared.name)
            .set_tags(Some(iam_tags(set)?))
            .send()
            .await
            .done(&self.what("TagRole"))
    }
    async fn untag(&self, _live: &Live, keys: Vec<String>) -> Result<(), ResourceError> {
        self.aws
            .iam
            .untag_role()
            .role_name(&self.declared.name)
            .set_tag_keys(Some(keys))
            .send()
            .await
            .done(&self.what("UntagRole"))
    }
}

impl Export for IamRole {
    /// Not in the template when the stack does not want it ([`IamRole::absent`]).
    fn cloudformation(&self, _code: &CodeLocation) -> Result<Vec<Part>, ResourceError> {
        use serde_json::json;
        if self.declared.absent {
            return Ok(Vec::new());
        }
        let spec: RoleSpec = spec_of(&self.declared.address, &self.declared.fields)?;
        let properties = object([
            ("RoleName", json!(self.declared.name)),
            ("AssumeRolePolicyDocument", json!(spec.assume_role_policy)),
            (
                "Policies",
                json!([{"PolicyName": POLICY_NAME, "PolicyDocument": spec.policy}]),
            ),
            (
                "ManagedPolicyArns",
                if spec.managed_policies.is_empty() {
                    serde_json::Value::Null
                } else {
                    json!(spec.managed_policies)
                },
            ),
            (
                "PermissionsBoundary",
                spec.permissions_boundary
                    .map_or(serde_json::Value::Null, |b| json!(b)),
            ),
            ("Tags", tag_list(&spec.tags)),
        ]);
        Ok(vec![Part::main("AWS::IAM::Role", properties)])
    }

    fn cloudformation_attr(&self, id: &str, attr: &str) -> Option<String> {
        crate::kind::export::name_ref_arn_getatt(id, attr)
    }
}

impl Access for IamRole {
    fn documents(&self, fields: &Fields) -> Vec<Document> {
        vec![
            Document {
                name: TRUST_POLICY.into(),
                kind: DocumentType::Trust,
                document: fields["assume_role_policy"].clone(),
            },
            Document {
                name: format!("{INLINE_POLICY} {POLICY_NAME}"),
                kind: DocumentType::Identity,
                document: fields["policy"].clone(),
            },
        ]
    }

    fn read_access(&self) -> Vec<Grant> {
        vec![Grant::on(
            &[
                "iam:GetRole",
                "iam:GetRolePolicy",
                "iam:ListRolePolicies",
                "iam:ListAttachedRolePolicies",
            ],
            vec![own(self, ARN)],
        )]
    }

    fn write_access(&self) -> Vec<Grant> {
        // Declared absent: only what deleting it takes (a preview's client
        // role can never be created by CI).
        if self.declared.absent {
            return vec![Grant::on(
                &[
                    "iam:DeleteRolePolicy",
                    "iam:DetachRolePolicy",
                    "iam:DeleteRole",
                ],
                vec![own(self, ARN)],
            )];
        }
        let rest = Grant::on(
            &[
                "iam:UpdateAssumeRolePolicy",
                "iam:TagRole",
                "iam:UntagRole",
                "iam:DeleteRole",
            ],
            vec![own(self, ARN)],
        );
        let boundary = self
            .declared
            .fields
            .get("permissions_boundary")
            .and_then(Value::as_str);
        match boundary {
            // Only with the boundary (see BOUNDED_WRITES).
            Some(boundary) => vec![
                Grant::on(&BOUNDED_WRITES, vec![own(self, ARN)]).when(
                    "StringEquals",
                    "iam:PermissionsBoundary",
                    vec![Text::from(boundary.to_owned())],
                ),
                rest,
            ],
            // A role without a boundary (bootstrap's own, made by a person).
            None => vec![
                Grant::on(
                    &[
                        "iam:CreateRole",
                        "iam:PutRolePolicy",
                        "iam:DeleteRolePolicy",
                        "iam:DetachRolePolicy",
                    ],
                    vec![own(self, ARN)],
                ),
                rest,
            ],
        }
    }
}

/// The role's fields as the spec names them: its trust policy, the stack's
/// inline policy, any other inline policies, attached policies, boundary
/// and tags.
fn live_fields(role: &Role, policy: Value, inline: Vec<String>, attached: Vec<String>) -> Fields {
    let trust = role
        .assume_role_policy_document()
        .map(parse_document)
        .unwrap_or(Value::Null);
    let others: Vec<String> = inline.into_iter().filter(|p| p != POLICY_NAME).collect();
    Fields::from([
        ("assume_role_policy".into(), trust),
        ("policy".into(), policy),
        ("other_inline_policies".into(), Value::from(others)),
        ("managed_policies".into(), Value::from(attached)),
        (
            "permissions_boundary".into(),
            role.permissions_boundary()
                .and_then(|b| b.permissions_boundary_arn())
                .map_or(Value::Null, Value::from),
        ),
        (
            tags::FIELD.into(),
            tags::to_value(role.tags().iter().map(|t| (t.key(), t.value()))),
        ),
    ])
}
