//! [`Sidecar`]: the `data/<name>.json` format, the settings plus the retraining job's `force`.

use schemars::JsonSchema;
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::Overrides;
use crate::error::{Error, Result};

/// A `data/<name>.json` sidecar: the settings for that data set, plus the retraining job's own
/// option `force` (publish even when the quality gate fails), which is not a training setting
/// and never changes the model or its version.
#[derive(Clone, Debug, Default, PartialEq, Serialize, JsonSchema)]
#[schemars(
    title = "tagger data set sidecar (data/<name>.json)",
    deny_unknown_fields
)]
pub struct Sidecar {
    #[serde(flatten)]
    pub settings: Overrides,
    /// The retraining job's option: publish even when the quality gate fails.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force: Option<bool>,
}

impl Sidecar {
    /// Parses a sidecar; an unknown key, a wrong type or an out-of-range value is an error
    /// naming the setting.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        let sidecar: Sidecar = serde_path_to_error::deserialize(de).map_err(Error::config_json)?;
        sidecar.settings.validate()?;
        Ok(sidecar)
    }
}

impl<'de> Deserialize<'de> for Sidecar {
    /// The settings keys go to [`Overrides`]' own (strict) deserializer as they stream past, so
    /// values are never buffered or converted: only `force` is taken out on the way.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct SidecarVisitor;
        impl<'de> Visitor<'de> for SidecarVisitor {
            type Value = Sidecar;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object of settings")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<Sidecar, A::Error> {
                let mut force = None;
                let settings =
                    Overrides::deserialize(de::value::MapAccessDeserializer::new(WithoutForce {
                        inner: map,
                        force: &mut force,
                    }))?;
                Ok(Sidecar { settings, force })
            }
        }
        deserializer.deserialize_map(SidecarVisitor)
    }
}

/// A map that hands every entry through except `force`, which it keeps.
struct WithoutForce<'a, A> {
    inner: A,
    force: &'a mut Option<bool>,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for WithoutForce<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> std::result::Result<Option<K::Value>, A::Error> {
        loop {
            let Some(key) = self.inner.next_key::<String>()? else {
                return Ok(None);
            };
            if key == "force" {
                if self.force.is_some() {
                    return Err(de::Error::duplicate_field("force"));
                }
                *self.force = Some(self.inner.next_value()?);
                continue;
            }
            return seed.deserialize(key.into_deserializer()).map(Some);
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> std::result::Result<V::Value, A::Error> {
        self.inner.next_value_seed(seed)
    }
}
