//! The images bucket: referenced by the stack, never created or deleted by it.
//! `read` only checks that it exists.

use std::sync::Arc;

use async_trait::async_trait;

use super::policies::Statement;
use super::{ARN, Aws, NAME, aws_error};
use crate::engine::{Declared, Fields, Finding, Handle, Live, ResourceError, Text, TypedKind};
use crate::kind::export::{CodeLocation, Export, Part};
use crate::kind::{Access, Grant, own};

pub struct ReferencedBucket {
    declared: Declared,
    /// The stack's prefix in it: all the stack may list.
    prefix: String,
    aws: Arc<Aws>,
}

/// Attributes the referenced bucket exports; both follow from its name.
impl crate::kind::HasArn for ReferencedBucket {}
impl crate::kind::HasName for ReferencedBucket {}

/// What a function that stores images under `{prefix}/images/` may do in the
/// bucket: put and get objects there, and list only that prefix (without
/// `s3:ListBucket`, S3 answers a HEAD on a missing key with 403, not 404, and
/// "is this image already generated?" fails on every message).
pub fn image_store_statements(bucket: &Handle<ReferencedBucket>, prefix: &str) -> Vec<Statement> {
    let images = couch_contract::images_prefix(prefix);
    vec![
        Statement::allow(
            "StoreImages",
            &["s3:PutObject", "s3:GetObject"],
            vec![Text::from(bucket.arn()).then(format!("/{images}*"))],
        ),
        Statement::allow("ListImages", &["s3:ListBucket"], vec![bucket.arn().into()]).when(
            "StringLike",
            "s3:prefix",
            vec![format!("{images}*").into()],
        ),
    ]
}

/// The Region of a bucket from `GetBucketLocation`'s `LocationConstraint`:
/// none for us-east-1, `EU` for the oldest eu-west-1 buckets (S3 API
/// reference, GetBucketLocation).
pub fn bucket_region(constraint: Option<&str>) -> String {
    match constraint {
        None | Some("") => "us-east-1".into(),
        Some("EU") => "eu-west-1".into(),
        Some(region) => region.to_owned(),
    }
}

/// `arn:aws:s3:::{bucket}`: S3 ARNs carry neither region nor account.
pub fn bucket_arn(bucket: &str) -> String {
    format!("arn:aws:s3:::{bucket}")
}

impl ReferencedBucket {
    pub fn new(address: &str, name: String, prefix: &str, aws: Arc<Aws>) -> Self {
        let declared = Declared::new(address, name.clone(), Fields::new())
            .knowing(ARN, bucket_arn(&name))
            .knowing(NAME, name);
        ReferencedBucket {
            declared,
            prefix: prefix.trim_matches('/').to_owned(),
            aws,
        }
    }
}

#[async_trait]
impl TypedKind for ReferencedBucket {
    /// Referenced: nothing to create, so no spec beyond its fields.
    type Spec = Fields;
    const KIND: &'static str = "s3-bucket";

    fn declared(&self) -> &Declared {
        &self.declared
    }
    fn managed(&self) -> bool {
        false
    }
    fn taggable(&self) -> bool {
        false
    }

    /// Whether it exists, and where: `GetBucketLocation` (S3 answers it
    /// whatever the bucket's Region; `HeadBucket` would need an unscoped
    /// `s3:ListBucket`, which the plan role holds only for the stack's prefix).
    async fn read(&self) -> Result<Option<Live>, ResourceError> {
        let name = &self.declared.name;
        let location = match self.aws.s3.get_bucket_location().bucket(name).send().await {
            Ok(out) => out.location_constraint().map(|c| c.as_str().to_owned()),
            Err(e) => {
                let status = e.raw_response().map(|r| r.status().as_u16());
                match (status, super::error_code(&e)) {
                    (Some(404), _) | (_, Some("NoSuchBucket")) => return Ok(None),
                    (Some(403), _) => {
                        return Err(ResourceError::new(format!(
                            "s3:GetBucketLocation {name}: access denied; the credentials cannot see the images bucket (or it is another account's)"
                        )));
                    }
                    _ => return Err(aws_error(&format!("s3:GetBucketLocation {name}"), e)),
                }
            }
        };
        let region = bucket_region(location.as_deref());
        let mut live = Live {
            attrs: self.declared.known.clone(),
            ..Live::default()
        };
        if region != self.aws.region {
            live.findings.push(Finding::Problem(format!(
                "the images bucket {name} is in {region}, the stack in {}: the functions and the stack lock would write across Regions, which the SDK does not follow. Use a bucket in {} (scripts/create-images-bucket), or deploy the stack to {region}",
                self.aws.region, self.aws.region
            )));
        }
        Ok(Some(live))
    }
}

/// Referenced, not managed: not in the template; references to it are its
/// known name and ARN.
impl Export for ReferencedBucket {
    fn cloudformation(&self, _code: &CodeLocation) -> Result<Vec<Part>, ResourceError> {
        Ok(Vec::new())
    }

    fn cloudformation_attr(&self, _id: &str, _attr: &str) -> Option<String> {
        None
    }
}

/// Does it exist, where: `s3:GetBucketLocation`. Listing (the stack lock:
/// S3 answers a missing key with 404 only to who may list it) only under
/// the stack's prefix.
impl Access for ReferencedBucket {
    fn read_access(&self) -> Vec<Grant> {
        vec![
            Grant::on(&["s3:GetBucketLocation"], vec![own(self, ARN)]),
            Grant::on(&["s3:ListBucket"], vec![own(self, ARN)]).when(
                "StringLike",
                "s3:prefix",
                vec![Text::from(format!("{}/*", self.prefix))],
            ),
        ]
    }

    fn write_access(&self) -> Vec<Grant> {
        Vec::new()
    }
}
