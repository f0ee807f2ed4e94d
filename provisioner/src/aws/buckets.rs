//! The images bucket: referenced by the stack, never created or deleted by it.
//! `read` only checks that it exists.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;

use super::policies::Statement;
use super::{ARN, Aws, NAME, aws_error};
use crate::engine::{
    Declared, DeleteOutcome, Fields, Handle, Live, Ref, Resource, ResourceError, Text,
};
use crate::kind::export::{CodeLocation, Export, Part};
use crate::kind::{Access, Grant, own};

pub struct ReferencedBucket {
    declared: Declared,
    aws: Arc<Aws>,
}

/// Attributes the referenced bucket exports; both follow from its name.
impl Handle<ReferencedBucket> {
    pub fn arn(&self) -> Ref {
        self.attr(ARN)
    }
    pub fn name(&self) -> Ref {
        self.attr(NAME)
    }
}

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

/// `arn:aws:s3:::{bucket}`: S3 ARNs carry neither region nor account.
pub fn bucket_arn(bucket: &str) -> String {
    format!("arn:aws:s3:::{bucket}")
}

impl ReferencedBucket {
    pub fn new(address: &str, name: String, aws: Arc<Aws>) -> Self {
        let declared = Declared::new(address, name.clone(), Fields::new())
            .knowing(ARN, bucket_arn(&name))
            .knowing(NAME, name);
        ReferencedBucket { declared, aws }
    }

    fn refuse(&self) -> ResourceError {
        ResourceError::referenced(&self.declared.address)
    }
}

#[async_trait]
impl Resource for ReferencedBucket {
    fn declared(&self) -> &Declared {
        &self.declared
    }
    fn kind(&self) -> &'static str {
        "s3-bucket"
    }
    fn managed(&self) -> bool {
        false
    }
    fn taggable(&self) -> bool {
        false
    }

    async fn read(&self) -> Result<Option<Live>, ResourceError> {
        match self
            .aws
            .s3
            .head_bucket()
            .bucket(&self.declared.name)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) => {
                let status = e.raw_response().map(|r| r.status().as_u16());
                match status {
                    Some(404) => return Ok(None),
                    // 301: the bucket is in another region; it exists.
                    Some(301) => {}
                    Some(403) => {
                        return Err(ResourceError::new(format!(
                            "s3:HeadBucket {}: access denied; the credentials cannot see the images bucket",
                            self.declared.name
                        )));
                    }
                    _ => {
                        return Err(aws_error(
                            &format!("s3:HeadBucket {}", self.declared.name),
                            e,
                        ));
                    }
                }
            }
        }
        Ok(Some(Live {
            attrs: self.declared.known.clone(),
            ..Live::default()
        }))
    }

    async fn create(&self, _desired: &Fields) -> Result<Live, ResourceError> {
        Err(self.refuse())
    }
    async fn update(
        &self,
        _: &Live,
        _: &Fields,
        _: &BTreeSet<String>,
    ) -> Result<(), ResourceError> {
        Err(self.refuse())
    }
    async fn delete(&self, _live: &Live) -> Result<DeleteOutcome, ResourceError> {
        Err(self.refuse())
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

/// `HeadBucket` (does it exist?) is authorised as `s3:ListBucket`.
impl Access for ReferencedBucket {
    fn read_access(&self) -> Vec<Grant> {
        vec![Grant::on(&["s3:ListBucket"], vec![own(self, ARN)])]
    }

    fn write_access(&self) -> Vec<Grant> {
        Vec::new()
    }
}
