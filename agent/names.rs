//! User and group names, both ways: read from `/etc/passwd` and `/etc/group`
//! once and again only when the file changes (any command may add, rename or
//! remove users), with `getent` (NSS: LDAP, sssd, ...) for a name or id the
//! files do not have. `stat -c %U` prints `UNKNOWN` for an id nobody names,
//! and so does the agent.

use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};

/// One of the two databases, as last read.
struct Table {
    file: &'static str,
    getent: &'static str,
    /// (mtime ns, size, inode) of the file when read.
    seen: Option<(i64, u64, u64)>,
    entries: Vec<(String, u32)>,
}

impl Table {
    fn new(file: &'static str, getent: &'static str) -> Self {
        Table {
            file,
            getent,
            seen: None,
            entries: Vec::new(),
        }
    }

    fn refresh(&mut self) {
        let now = std::fs::metadata(self.file).ok().map(|m| {
            (
                m.mtime() * 1_000_000_000 + m.mtime_nsec(),
                m.size(),
                m.ino(),
            )
        });
        if now == self.seen && now.is_some() {
            return;
        }
        self.seen = now;
        self.entries = std::fs::read_to_string(self.file)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                let id = f.nth(1)?.parse().ok()?;
                (!name.is_empty() && !name.starts_with('#')).then(|| (name.to_string(), id))
            })
            .collect();
    }

    /// `getent DB KEY`: (name, id) of the first line, when it answers.
    fn getent(&self, key: &str) -> Option<(String, u32)> {
        let out = Command::new("getent")
            .args([self.getent, key])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut f = text.lines().next()?.split(':');
        let name = f.next()?.to_string();
        let id = f.nth(1)?.parse().ok()?;
        Some((name, id))
    }

    fn name_of(&mut self, id: u32) -> String {
        self.refresh();
        if let Some((n, _)) = self.entries.iter().find(|(_, i)| *i == id) {
            return n.clone();
        }
        self.getent(&id.to_string())
            .map(|(n, _)| n)
            .unwrap_or_else(|| "UNKNOWN".to_string())
    }

    fn id_of(&mut self, name: &str) -> Option<u32> {
        self.refresh();
        if let Some((_, i)) = self.entries.iter().find(|(n, _)| n == name) {
            return Some(*i);
        }
        if let Ok(i) = name.parse() {
            return Some(i);
        }
        self.getent(name).map(|(_, i)| i)
    }
}

/// Both databases.
pub struct Names {
    users: Table,
    groups: Table,
}

impl Names {
    pub fn new() -> Self {
        Names {
            users: Table::new("/etc/passwd", "passwd"),
            groups: Table::new("/etc/group", "group"),
        }
    }

    pub fn user(&mut self, uid: u32) -> String {
        self.users.name_of(uid)
    }

    pub fn group(&mut self, gid: u32) -> String {
        self.groups.name_of(gid)
    }

    pub fn uid(&mut self, name: &str) -> Option<u32> {
        self.users.id_of(name)
    }

    pub fn gid(&mut self, name: &str) -> Option<u32> {
        self.groups.id_of(name)
    }
}
