//! `rrun --help` and the command-line contract (../shared/docs/CLI.md) agree: every
//! subcommand CLI.md names is listed by `rrun --help` (`rrun network --help` for network's),
//! with the flags CLI.md gives it, and `rrun --help` lists no subcommand CLI.md does not name.

use std::collections::BTreeSet;

use rbox_tests::cmd;

/// The `rrun …` spans (between backquotes) of CLI.md.
fn rrun_spans() -> Vec<Vec<String>> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/docs/CLI.md");
    let doc = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    doc.split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|span| span.strip_prefix("rrun "))
        .map(|rest| rest.split_whitespace().map(str::to_string).collect())
        .collect()
}

fn help(args: &[&str]) -> String {
    let o = cmd("rrun")
        .args(args)
        .arg("--help")
        .output()
        .expect("run rrun");
    assert!(o.status.success(), "rrun {args:?} --help: {o:?}");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The names in the "Commands:" block of a --help text (without clap's own `help`).
fn listed(help: &str) -> BTreeSet<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect()
}

#[test]
fn rrun_help_and_cli_md_name_the_same_subcommands_and_flags() {
    let top = help(&[]);
    let mut named = BTreeSet::new();
    let mut network = BTreeSet::new();
    for words in rrun_spans() {
        let Some(sub) = words
            .first()
            .filter(|w| w.chars().all(|c| c.is_ascii_lowercase()))
        else {
            continue; // `rrun [OPTIONS] --image …`
        };
        let mut path = vec![sub.as_str()];
        if sub == "network" {
            let n = words.get(1).expect("a network subcommand");
            network.insert(n.clone());
            path.push(n.as_str());
        }
        named.insert(sub.clone());
        let h = help(&path);
        for w in &words[path.len()..] {
            let flag = w.trim_start_matches('[').trim_end_matches(']');
            if flag.starts_with('-') {
                assert!(
                    h.contains(&format!("{flag},")) || h.contains(&format!("{flag} ")),
                    "CLI.md gives `rrun {}` the flag {flag}, its --help does not:\n{h}",
                    path.join(" ")
                );
            }
        }
    }
    assert!(named.contains("run") && named.contains("ps") && network.contains("create"));
    // Beyond CLI.md, rrun has only what issue 11 asks of it as of Docker: `rrun port NAME` and
    // `rrun network connect|disconnect`. Anything else must be in both.
    let extra = |listed: BTreeSet<String>, named: &BTreeSet<String>, allowed: &[&str]| {
        assert!(
            listed.is_superset(named),
            "CLI.md names what --help lacks: {named:?} vs {listed:?}"
        );
        let more: Vec<&String> = listed.difference(named).collect();
        assert!(
            more.iter().all(|m| allowed.contains(&m.as_str())),
            "--help names what CLI.md does not: {more:?}"
        );
    };
    extra(listed(&top), &named, &["port"]);
    extra(
        listed(&help(&["network"])),
        &network,
        &["connect", "disconnect"],
    );
}
