//! The typed kind adapter: what every resource kind writes once, and what the
//! engine does for all of them.
//!
//! A kind implements [`TypedKind`] on its own typed spec (`type Spec`); the
//! blanket [`Resource`] implementation below gives the engine what it drives:
//! the address and physical name from the kind's [`Declared`], resolved
//! fields turned into the spec, tag changes made through the kind's
//! [`Tagging`] calls under the engine's retry policy, and an AWS "not found"
//! read as absent (on `read`) or as already gone (on `delete`). An update
//! names the fields that changed as typed [`Field`]s of the spec (declared
//! with [`fields!`](crate::fields)), so a misspelt field is a compile error.

use std::collections::{BTreeMap, BTreeSet};
use std::marker::PhantomData;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::permission_changes::Permission;
use super::resource::{
    Attrs, Declared, DeleteOutcome, ErrorKind, Fields, Finding, Live, Resource, ResourceError,
    spec_of,
};
use super::retry;

/// The field every taggable kind keeps its tags in (an object of strings);
/// ownership is read from it ([`crate::plan::owned_by`]).
pub const TAGS: &str = "tags";

/// Tags as every kind's spec declares them.
pub type Tags = BTreeMap<String, String>;

/// A field of spec `S`, by the name it has in the engine's fields. Made only
/// by [`fields!`](crate::fields), which checks that `S` has the field.
pub struct Field<S> {
    name: &'static str,
    spec: PhantomData<fn() -> S>,
}

impl<S> Field<S> {
    /// Use [`fields!`](crate::fields): it proves the field exists.
    #[doc(hidden)]
    pub const fn named(name: &'static str) -> Self {
        Field {
            name,
            spec: PhantomData,
        }
    }
    pub const fn name(&self) -> &'static str {
        self.name
    }
}

impl<S> Clone for Field<S> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S> Copy for Field<S> {}
impl<S> std::fmt::Debug for Field<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// Declares typed [`Field`] constants on a spec type, checking at compile time
/// that each names a field of it: `fields!(QueueSpec { REDRIVE: redrive = "redrive_policy" })`
/// (the string is the serialised name, when serde renames the field).
#[macro_export]
macro_rules! fields {
    ($spec:ty { $($konst:ident : $field:ident $(= $name:literal)?),* $(,)? }) => {
        impl $spec {
            $(
                #[allow(dead_code)]
                pub const $konst: $crate::typed::Field<$spec> =
                    $crate::typed::Field::named($crate::fields!(@name $field $($name)?));
            )*
            /// Every field declared above (a test checks each is a
            /// serialised field name of the spec).
            #[allow(dead_code)]
            pub const FIELDS: &'static [$crate::typed::Field<$spec>] = &[$(<$spec>::$konst),*];
        }
        const _: () = {
            #[allow(dead_code)]
            fn every_field_exists(spec: &$spec) {
                $( let _ = &spec.$field; )*
            }
        };
    };
    (@name $field:ident) => { stringify!($field) };
    (@name $field:ident $name:literal) => { $name };
}

/// What an update has to do: the live resource, the desired spec (every
/// reference resolved), its fields, and which fields differ (tags excluded
/// when the engine syncs them).
pub struct Update<'a, S> {
    pub live: &'a Live,
    pub spec: &'a S,
    /// The desired spec's fields, for kinds that send fields as AWS encodes them.
    pub desired: &'a Fields,
    changed: &'a BTreeSet<String>,
}

impl<S> Update<'_, S> {
    /// Whether `field` differs from the live value.
    pub fn has(&self, field: Field<S>) -> bool {
        self.changed.contains(field.name)
    }
    /// Whether any of `fields` differs.
    pub fn any(&self, fields: &[Field<S>]) -> bool {
        fields.iter().any(|f| self.has(*f))
    }
    /// Whether a field other than `fields` differs.
    pub fn other_than(&self, fields: &[Field<S>]) -> bool {
        self.changed
            .iter()
            .any(|c| !fields.iter().any(|f| f.name == c.as_str()))
    }
    /// The names of the fields that differ (for messages).
    pub fn names(&self) -> &BTreeSet<String> {
        self.changed
    }
}

/// A kind's tag calls. The engine computes the delta from live to desired
/// tags and calls each only when it has something to do, under its retry
/// policy ([`retry::call`]).
#[async_trait]
pub trait Tagging: Send + Sync {
    async fn tag(&self, live: &Live, tags: Tags) -> Result<(), ResourceError>;
    async fn untag(&self, live: &Live, keys: Vec<String>) -> Result<(), ResourceError>;
}

/// One resource kind, written once against its typed spec. Everything a kind
/// does not say has the engine's default (see [`Resource`] for each).
#[async_trait]
pub trait TypedKind: Send + Sync {
    /// The kind's declaration: what `declare` builds and `create` receives.
    type Spec: Serialize + DeserializeOwned + Send + Sync + 'static;
    /// Kind name shown in plans, e.g. `sqs-queue`.
    const KIND: &'static str;
    /// Fields whose change needs a new resource.
    const REPLACE_ON: &'static [Field<Self::Spec>] = &[];
    /// Attributes that change on every create or update (see [`Resource::volatile`]).
    const VOLATILE: &'static [&'static str] = &[];

    /// Address, physical name, desired fields, known attributes.
    fn declared(&self) -> &Declared;
    /// Whether it carries the stack's ownership tags (see [`Resource::taggable`]).
    fn taggable(&self) -> bool {
        true
    }
    /// `false` for what the stack only references: read, never changed.
    fn managed(&self) -> bool {
        true
    }
    /// The kind's tag calls, when the engine syncs its `tags` field.
    fn tagging(&self) -> Option<&dyn Tagging> {
        None
    }
    /// See [`Resource::permissions`].
    fn permissions(&self, _fields: &Fields) -> Vec<Permission> {
        Vec::new()
    }
    /// See [`Resource::predict`].
    async fn predict(&self) -> Result<Attrs, ResourceError> {
        Ok(self.declared().known.clone())
    }
    /// See [`Resource::check`].
    async fn check(&self) -> Result<Vec<Finding>, ResourceError> {
        Ok(Vec::new())
    }
    /// The live form. An error of [`ErrorKind::NotFound`] reads as absent, so
    /// a kind may let its first lookup's "not found" through; a part that is
    /// missing from a resource that exists must be handled by the kind.
    async fn read(&self) -> Result<Option<Live>, ResourceError>;
    /// Creates it (with its tags, where AWS allows) from the desired spec.
    /// Only what the stack references (`managed() == false`, whose `Spec`
    /// is its plain `Fields`) keeps the default: the engine never calls it.
    async fn create(&self, _spec: &Self::Spec, _desired: &Fields) -> Result<Live, ResourceError> {
        Err(ResourceError::referenced(&self.declared().address))
    }
    /// Brings the changed fields to the desired spec; called only when a
    /// field other than engine-synced tags changed.
    async fn update(&self, change: &Update<'_, Self::Spec>) -> Result<(), ResourceError> {
        Err(ResourceError::new(format!(
            "{}: {} cannot be changed in place",
            self.declared().address,
            change
                .names()
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }
    /// Deletes it; an error of [`ErrorKind::NotFound`] means it is gone
    /// already. Referenced kinds keep the default, never called.
    async fn delete(&self, _live: &Live) -> Result<DeleteOutcome, ResourceError> {
        Err(ResourceError::referenced(&self.declared().address))
    }
}

/// A create that found its resource made already (by an interrupted run,
/// or by a lost attempt of this one): brings every declared field of what
/// exists to `desired`. Kinds call it from `create` after AWS's "already
/// exists".
pub async fn converge_existing(r: &dyn Resource, desired: &Fields) -> Result<(), ResourceError> {
    let live = r.read().await?.ok_or_else(|| {
        ResourceError::new(format!(
            "{} ({}) exists and vanished",
            r.address(),
            r.name()
        ))
    })?;
    let all: BTreeSet<String> = desired.keys().cloned().collect();
    r.update(&live, desired, &all).await
}

/// Live and desired tags' delta: what to set, and which keys to remove.
pub fn tag_delta(live: &Fields, desired: &Fields) -> (Tags, Vec<String>) {
    let have = tags_of(live);
    let want = tags_of(desired);
    let set = want
        .iter()
        .filter(|(k, v)| have.get(*k) != Some(v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let remove = have
        .keys()
        .filter(|k| !want.contains_key(*k))
        .cloned()
        .collect();
    (set, remove)
}

/// The tags of a field map (empty when absent).
pub fn tags_of(fields: &Fields) -> Tags {
    match fields.get(TAGS) {
        Some(serde_json::Value::Object(m)) => m
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect(),
        _ => Tags::new(),
    }
}

#[async_trait]
impl<K: TypedKind> Resource for K {
    fn declared(&self) -> &Declared {
        TypedKind::declared(self)
    }
    fn kind(&self) -> &'static str {
        K::KIND
    }
    fn replace_on(&self) -> Vec<&'static str> {
        K::REPLACE_ON.iter().map(Field::name).collect()
    }
    fn taggable(&self) -> bool {
        TypedKind::taggable(self)
    }
    fn volatile(&self) -> &'static [&'static str] {
        K::VOLATILE
    }
    fn managed(&self) -> bool {
        TypedKind::managed(self)
    }
    fn permissions(&self, fields: &Fields) -> Vec<Permission> {
        TypedKind::permissions(self, fields)
    }
    async fn predict(&self) -> Result<Attrs, ResourceError> {
        TypedKind::predict(self).await
    }
    async fn check(&self) -> Result<Vec<Finding>, ResourceError> {
        TypedKind::check(self).await
    }
    async fn read(&self) -> Result<Option<Live>, ResourceError> {
        match TypedKind::read(self).await {
            Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
            other => other,
        }
    }
    async fn create(&self, desired: &Fields) -> Result<Live, ResourceError> {
        if !TypedKind::managed(self) {
            return Err(ResourceError::referenced(self.address()));
        }
        let spec: K::Spec = spec_of(self.address(), desired)?;
        TypedKind::create(self, &spec, desired).await
    }
    async fn update(
        &self,
        live: &Live,
        desired: &Fields,
        changed: &BTreeSet<String>,
    ) -> Result<(), ResourceError> {
        if !TypedKind::managed(self) {
            return Err(ResourceError::referenced(self.address()));
        }
        let spec: K::Spec = spec_of(self.address(), desired)?;
        let tagging = self.tagging();
        let rest: BTreeSet<String> = changed
            .iter()
            .filter(|f| tagging.is_none() || f.as_str() != TAGS)
            .cloned()
            .collect();
        if !rest.is_empty() {
            let change = Update {
                live,
                spec: &spec,
                desired,
                changed: &rest,
            };
            TypedKind::update(self, &change).await?;
        }
        if let Some(tagging) = tagging
            && changed.contains(TAGS)
        {
            let (set, remove) = tag_delta(&live.fields, desired);
            if !set.is_empty() {
                retry::call(|| tagging.tag(live, set.clone())).await?;
            }
            if !remove.is_empty() {
                retry::call(|| tagging.untag(live, remove.clone())).await?;
            }
        }
        Ok(())
    }
    async fn delete(&self, live: &Live) -> Result<DeleteOutcome, ResourceError> {
        if !TypedKind::managed(self) {
            return Err(ResourceError::referenced(self.address()));
        }
        match TypedKind::delete(self, live).await {
            Err(e) if e.kind == ErrorKind::NotFound => Ok(DeleteOutcome::Deleted),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Serialize, Deserialize)]
    struct BoxSpec {
        size: u32,
        #[serde(rename = "colour_name")]
        colour: String,
        tags: Tags,
    }
    crate::fields!(BoxSpec {
        SIZE: size,
        COLOUR: colour = "colour_name",
    });

    #[derive(Default)]
    struct Calls(Mutex<Vec<String>>);

    impl Calls {
        fn push(&self, call: String) {
            self.0.lock().unwrap().push(call);
        }
        fn taken(&self) -> Vec<String> {
            std::mem::take(&mut self.0.lock().unwrap())
        }
    }

    struct Boxes {
        declared: Declared,
        calls: Calls,
        missing: bool,
    }

    #[async_trait]
    impl Tagging for Boxes {
        async fn tag(&self, _live: &Live, tags: Tags) -> Result<(), ResourceError> {
            self.calls.push(format!("tag {tags:?}"));
            Ok(())
        }
        async fn untag(&self, _live: &Live, keys: Vec<String>) -> Result<(), ResourceError> {
            self.calls.push(format!("untag {keys:?}"));
            Ok(())
        }
    }

    #[async_trait]
    impl TypedKind for Boxes {
        type Spec = BoxSpec;
        const KIND: &'static str = "box";
        const REPLACE_ON: &'static [Field<BoxSpec>] = &[BoxSpec::COLOUR];
        fn declared(&self) -> &Declared {
            &self.declared
        }
        fn tagging(&self) -> Option<&dyn Tagging> {
            Some(self)
        }
        async fn read(&self) -> Result<Option<Live>, ResourceError> {
            if self.missing {
                return Err(ResourceError::answered(
                    "box:Get: NoSuchBox",
                    ErrorKind::NotFound,
                    Some("NoSuchBox"),
                ));
            }
            Ok(Some(Live::default()))
        }
        async fn create(&self, spec: &BoxSpec, _: &Fields) -> Result<Live, ResourceError> {
            self.calls
                .push(format!("create {} {}", spec.size, spec.colour));
            Ok(Live::default())
        }
        async fn update(&self, change: &Update<'_, BoxSpec>) -> Result<(), ResourceError> {
            self.calls.push(format!(
                "update size={} colour={} to {}",
                change.has(BoxSpec::SIZE),
                change.has(BoxSpec::COLOUR),
                change.spec.size
            ));
            Ok(())
        }
        async fn delete(&self, _live: &Live) -> Result<DeleteOutcome, ResourceError> {
            Err(ResourceError::answered(
                "box:Delete: NoSuchBox",
                ErrorKind::NotFound,
                Some("NoSuchBox"),
            ))
        }
    }

    fn boxes(missing: bool) -> Boxes {
        let spec = BoxSpec {
            size: 3,
            colour: "red".into(),
            tags: Tags::from([("stack".into(), "s".into())]),
        };
        Boxes {
            declared: Declared::of("box.a", "a", &spec),
            calls: Calls::default(),
            missing,
        }
    }

    fn fields(v: serde_json::Value) -> Fields {
        v.as_object().unwrap().clone().into_iter().collect()
    }

    #[tokio::test]
    async fn the_adapter_gives_the_engine_a_resource() {
        let b = boxes(false);
        let r: &dyn Resource = &b;
        assert_eq!((r.kind(), r.address(), r.name()), ("box", "box.a", "a"));
        assert_eq!(r.replace_on(), ["colour_name"]);
        assert!(r.taggable() && r.managed());
        r.create(&r.desired()).await.unwrap();
        assert_eq!(b.calls.taken(), ["create 3 red"]);
        // A field the spec cannot take is an error naming the address.
        let bad = fields(json!({"size": "three", "colour_name": "red", "tags": {}}));
        let e = r.create(&bad).await.unwrap_err();
        assert!(
            e.message.starts_with("box.a: declared fields do not fit"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn tags_are_synced_by_the_engine_and_the_rest_by_the_kind() {
        let b = boxes(false);
        let r: &dyn Resource = &b;
        let live = Live {
            fields: fields(
                json!({"size": 2, "colour_name": "red", "tags": {"stack": "s", "old": "x"}}),
            ),
            ..Live::default()
        };
        let desired =
            fields(json!({"size": 3, "colour_name": "red", "tags": {"stack": "s", "new": "y"}}));
        let only_tags = BTreeSet::from([TAGS.to_owned()]);
        r.update(&live, &desired, &only_tags).await.unwrap();
        assert_eq!(
            b.calls.taken(),
            ["tag {\"new\": \"y\"}", "untag [\"old\"]"],
            "tags only: the kind's update is not called"
        );
        let both = BTreeSet::from([TAGS.to_owned(), "size".to_owned()]);
        r.update(&live, &desired, &both).await.unwrap();
        assert_eq!(
            b.calls.taken(),
            [
                "update size=true colour=false to 3",
                "tag {\"new\": \"y\"}",
                "untag [\"old\"]"
            ]
        );
    }

    #[test]
    fn the_tag_delta_sets_changed_and_removes_extra() {
        let live = fields(json!({"tags": {"a": "1", "b": "2", "x": "9"}}));
        let want = fields(json!({"tags": {"a": "1", "b": "3", "c": "4"}}));
        let (set, remove) = tag_delta(&live, &want);
        assert_eq!(
            set,
            Tags::from([("b".into(), "3".into()), ("c".into(), "4".into())])
        );
        assert_eq!(remove, ["x"]);
    }

    #[tokio::test]
    async fn not_found_reads_as_absent_and_deletes_as_done() {
        let b = boxes(true);
        let r: &dyn Resource = &b;
        assert_eq!(r.read().await.unwrap(), None);
        assert_eq!(
            r.delete(&Live::default()).await.unwrap(),
            DeleteOutcome::Deleted
        );
    }
}
