//! Guest flavors: the five OpenStack flavors of the studies, built in, and how
//! an experiment scales them down (the built-in lab's TCG guests are small).

use super::scenario::Flavor;

/// OpenStack's default flavors as the studies used them: name, vCPUs, RAM MiB, disk GB.
pub const BUILT_IN: &[(&str, u32, u64, f64)] = &[
    ("m1.tiny", 1, 512, 1.0),
    ("m1.small", 1, 2048, 20.0),
    ("m1.medium", 2, 4096, 40.0),
    ("m1.large", 4, 8192, 80.0),
    ("m1.xlarge", 8, 16384, 160.0),
];

/// A built-in flavor by name (`m1.small`, or `small` for short).
pub fn built_in(name: &str) -> Option<Flavor> {
    BUILT_IN
        .iter()
        .find(|(n, ..)| *n == name || n.strip_prefix("m1.") == Some(name))
        .map(|&(n, vcpus, memory_mib, disk_gib)| Flavor {
            name: if name == n {
                n.to_string()
            } else {
                name.to_string()
            },
            vcpus,
            memory_mib,
            disk_gib,
        })
}

/// The names `built_in` knows, for suggestions.
pub fn built_in_names() -> impl Iterator<Item = &'static str> {
    BUILT_IN.iter().map(|(n, ..)| *n)
}

/// How flavors are scaled: RAM and disk multiplied by `factor`; RAM then raised to
/// `min_memory_mib` and rounded up to whole MiB (vCPUs are never scaled).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlavorScale {
    pub factor: f64,
    pub min_memory_mib: u64,
}

impl Default for FlavorScale {
    fn default() -> Self {
        FlavorScale {
            factor: 1.0,
            min_memory_mib: 0,
        }
    }
}

impl FlavorScale {
    pub fn apply(&self, f: &Flavor) -> Flavor {
        let memory = ((f.memory_mib as f64) * self.factor).ceil() as u64;
        Flavor {
            name: f.name.clone(),
            vcpus: f.vcpus,
            memory_mib: memory.max(self.min_memory_mib).max(1),
            disk_gib: f.disk_gib * self.factor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_studies_flavors_by_name_and_short_name() {
        let s = built_in("m1.small").unwrap();
        assert_eq!((s.vcpus, s.memory_mib, s.disk_gib), (1, 2048, 20.0));
        let x = built_in("xlarge").unwrap();
        assert_eq!(
            (x.name.as_str(), x.vcpus, x.memory_mib),
            ("xlarge", 8, 16384)
        );
        assert!(built_in("m1.huge").is_none());
    }

    #[test]
    fn scaling_keeps_vcpus_and_honours_the_floor() {
        let scale = FlavorScale {
            factor: 1.0 / 16.0,
            min_memory_mib: 96,
        };
        let tiny = scale.apply(&built_in("m1.tiny").unwrap());
        assert_eq!((tiny.vcpus, tiny.memory_mib), (1, 96)); // 32 MiB raised to the floor
        let medium = scale.apply(&built_in("m1.medium").unwrap());
        assert_eq!(
            (medium.vcpus, medium.memory_mib, medium.disk_gib),
            (2, 256, 2.5)
        );
    }
}
