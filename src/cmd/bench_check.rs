//! `ferry bench check`: time loading and validating a large inventory and playbook.

use std::fmt::Write as _;
use std::time::Instant;

use crate::CmdResult;
use crate::cli::BenchCheckArgs;
use crate::exit;

/// Write a generated inventory (`hosts` hosts in 10 groups) and a playbook of
/// `tasks` tasks (a mix of ops, loops, conditions, templates and handlers).
pub fn generate(
    dir: &std::path::Path,
    hosts: u32,
    tasks: u32,
) -> std::io::Result<(std::path::PathBuf, std::path::PathBuf)> {
    let mut inv = String::from("all:\n  vars:\n    base_dir: /srv\n  children:\n");
    for g in 0..10 {
        let _ = writeln!(
            inv,
            "    group{g}:\n      vars:\n        group_port_{g}: {}\n      hosts:",
            8000 + g
        );
        for h in (0..hosts).filter(|h| h % 10 == g) {
            let _ = writeln!(
                inv,
                "        host{h}:\n          ansible_host: 10.0.{}.{}\n          host_index: {h}",
                h / 250,
                h % 250 + 1
            );
        }
    }
    std::fs::create_dir_all(dir.join("templates"))?;
    std::fs::write(
        dir.join("templates/app.conf.j2"),
        "# {{ inventory_hostname }}\n{% for i in items %}\nitem={{ i }}\n{% endfor %}\nport={{ port }}\n",
    )?;
    let inv_path = dir.join("inventory.yml");
    std::fs::write(&inv_path, inv)?;
    let mut pb = String::from(
        "- name: generated\n  hosts: all\n  gather_facts: no\n  vars:\n    port: 8080\n    items: [a, b, c]\n  tasks:\n",
    );
    for t in 0..tasks {
        let task = match t % 5 {
            0 => format!(
                "    - name: dir {t}\n      file:\n        path: \"{{{{ base_dir }}}}/d{t}\"\n        state: directory\n        mode: \"0755\"\n"
            ),
            1 => format!(
                "    - name: conf {t}\n      template:\n        src: app.conf.j2\n        dest: /etc/app{t}.conf\n      notify: restart app\n"
            ),
            2 => format!(
                "    - name: cmd {t}\n      command: touch /tmp/f{t} creates=/tmp/f{t}\n      when: host_index is defined and port > 1\n      register: out{t}\n"
            ),
            3 => format!(
                "    - name: line {t}\n      lineinfile:\n        path: /etc/hosts\n        line: \"{{{{ item }}}} {t}\"\n      loop: \"{{{{ items }}}}\"\n"
            ),
            _ => format!(
                "    - name: debug {t}\n      debug:\n        msg: \"{{{{ out{} | default('none') }}}}\"\n",
                t.saturating_sub(2)
            ),
        };
        pb.push_str(&task);
    }
    pb.push_str("  handlers:\n    - name: restart app\n      command: /bin/true\n");
    let pb_path = dir.join("playbook.yml");
    std::fs::write(&pb_path, pb)?;
    Ok((inv_path, pb_path))
}

pub fn check(args: BenchCheckArgs) -> CmdResult {
    let dir = tempfile::tempdir().map_err(|e| miette::miette!("temp dir: {e}"))?;
    let (inv, pb) = generate(dir.path(), args.hosts, args.tasks)
        .map_err(|e| miette::miette!("writing the generated files: {e}"))?;
    let mut times = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        // Same calls as `ferry check` (interim inventory loader until the inventory module lands).
        let inventory = crate::inventory::Inventory::load(std::slice::from_ref(&inv))
            .map_err(miette::Report::new)?;
        let result = crate::playbook::load_and_check(
            std::slice::from_ref(&pb),
            &inventory,
            &Default::default(),
        );
        times.push(start.elapsed());
        if let Err(report) = result {
            return Err(miette::miette!(
                "the generated playbook does not check:\n{report}"
            ));
        }
    }
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "ferry check: {} hosts, {} tasks: median {:.1} ms, min {:.1} ms over {} runs (target < 100 ms)",
        args.hosts,
        args.tasks,
        median.as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times.len()
    );
    Ok(exit::OK)
}
