//! What the qmp driver asks of QEMU before a migration, as pure functions: the
//! post-copy capability's name in this QEMU's dialect, and the capabilities and
//! parameters of a scenario on each side.

use serde_json::{Value, json};

use crate::experiment::scenario::{AlgorithmKind, Scenario};

/// QEMU's `max-bandwidth` when the scenario sets none: effectively unlimited
/// (QEMU's own default, 32 MiB/s, would cap every run far below the link).
const UNLIMITED_BANDWIDTH: u64 = 1 << 40;

/// The capability names a QEMU uses for post-copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostcopyDialect {
    /// Upstream QEMU (2.5+): `postcopy-ram`.
    Upstream,
    /// The 2014 post-copy branch (orbitfp7/qemu, "2.1.50"): `x-postcopy-ram`.
    Experimental,
}

impl PostcopyDialect {
    /// From `query-migrate-capabilities`' answer; None: this QEMU has no post-copy.
    pub fn detect(capabilities: &Value) -> Option<PostcopyDialect> {
        let names: Vec<&str> = capabilities
            .as_array()
            .map(|a| a.iter().filter_map(|c| c["capability"].as_str()).collect())
            .unwrap_or_default();
        if names.contains(&"postcopy-ram") {
            Some(PostcopyDialect::Upstream)
        } else if names.contains(&"x-postcopy-ram") {
            Some(PostcopyDialect::Experimental)
        } else {
            None
        }
    }
    pub fn capability(self) -> &'static str {
        match self {
            PostcopyDialect::Upstream => "postcopy-ram",
            PostcopyDialect::Experimental => "x-postcopy-ram",
        }
    }
}

/// `migrate-set-capabilities` for one side of `scenario`'s algorithm.
pub fn capabilities(
    scenario: &Scenario,
    postcopy: Option<PostcopyDialect>,
    source: bool,
) -> Vec<Value> {
    let a = &scenario.algorithm;
    let mut caps = Vec::new();
    let mut set = |name: &str, on: bool| {
        if on {
            caps.push(json!({"capability": name, "state": true}));
        }
    };
    if let Some(d) = postcopy {
        set(d.capability(), a.kind != AlgorithmKind::Precopy);
    }
    set("multifd", a.multifd_channels.is_some());
    set("compress", a.compress);
    if source {
        set("auto-converge", a.auto_converge);
        set("xbzrle", a.xbzrle_cache_mib.is_some());
        // Block migration of the non-shared disk (QEMU's `block` capability, in
        // QEMU up to 9.0); zero blocks travel as flags, not 1 MiB of zeros each.
        set("block", a.block);
        set("zero-blocks", a.block);
    }
    caps
}

/// `migrate-set-parameters` arguments for one side.
pub fn parameters(scenario: &Scenario, source: bool) -> Value {
    let a = &scenario.algorithm;
    let mut p = serde_json::Map::new();
    if let Some(n) = a.multifd_channels {
        p.insert("multifd-channels".into(), json!(n));
    }
    if source {
        let bw = a
            .max_bandwidth_mib_s
            .map_or(UNLIMITED_BANDWIDTH, |m| m * 1024 * 1024);
        p.insert("max-bandwidth".into(), json!(bw));
        if let Some(ms) = a.downtime_limit_ms {
            p.insert("downtime-limit".into(), json!(ms));
        }
        if let Some(mib) = a.xbzrle_cache_mib {
            p.insert("xbzrle-cache-size".into(), json!(mib * 1024 * 1024));
        }
        if a.block && a.incremental {
            p.insert("block-incremental".into(), json!(true));
        }
    }
    Value::Object(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::scenario::*;

    fn scenario(kind: AlgorithmKind) -> Scenario {
        let algorithm = Algorithm {
            name: "x".into(),
            kind,
            xbzrle_cache_mib: Some(16),
            downtime_limit_ms: Some(20),
            ..Algorithm::default()
        };
        Scenario::for_test(0.0, algorithm, Load::default())
    }

    #[test]
    fn the_postcopy_capability_is_named_as_the_qemu_names_it() {
        let upstream = json!([{"capability": "xbzrle", "state": false},
            {"capability": "postcopy-ram", "state": false}]);
        let orbit = json!([{"capability": "x-postcopy-ram", "state": false}]);
        assert_eq!(
            PostcopyDialect::detect(&upstream),
            Some(PostcopyDialect::Upstream)
        );
        assert_eq!(
            PostcopyDialect::detect(&orbit),
            Some(PostcopyDialect::Experimental)
        );
        assert_eq!(PostcopyDialect::detect(&json!([])), None);
        let caps = capabilities(
            &scenario(AlgorithmKind::Hybrid),
            Some(PostcopyDialect::Experimental),
            true,
        );
        assert_eq!(
            caps,
            vec![
                json!({"capability": "x-postcopy-ram", "state": true}),
                json!({"capability": "xbzrle", "state": true})
            ]
        );
        // The destination gets no source-only capability.
        let dst = capabilities(
            &scenario(AlgorithmKind::Precopy),
            Some(PostcopyDialect::Upstream),
            false,
        );
        assert!(dst.is_empty(), "{dst:?}");
    }

    #[test]
    fn parameters_set_bandwidth_downtime_and_cache() {
        let p = parameters(&scenario(AlgorithmKind::Precopy), true);
        assert_eq!(p["max-bandwidth"], json!(UNLIMITED_BANDWIDTH));
        assert_eq!(p["downtime-limit"], json!(20));
        assert_eq!(p["xbzrle-cache-size"], json!(16 * 1024 * 1024));
        assert_eq!(
            parameters(&scenario(AlgorithmKind::Precopy), false),
            json!({})
        );
    }
}
