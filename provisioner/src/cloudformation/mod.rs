//! CloudFormation interop: the stack as a template (`export`), and leaving an
//! old CloudFormation (SAM) stack behind (`retire`).
//!
//! Each kind says, in its own file, what it becomes in a template
//! ([`Export`], defined with the kind contract in `crate::kind`); [`export::template`] assembles them and turns the engine's
//! `${address.attr}` references into `Ref`, `Fn::GetAtt` and `Fn::Sub`.

pub mod export;
pub mod retire;

pub use crate::kind::export::{
    CodeLocation, Export, Part, Suppression, Upload, logical_id, name_ref_arn_getatt, object,
    tag_list,
};
