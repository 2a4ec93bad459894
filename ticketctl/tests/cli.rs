//! The binary itself: its help names every command, and the tokens it makes are what the
//! services accept. (Its commands run against a whole system in e2e.)

use std::process::Command;

fn ticketctl(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ticketctl"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run ticketctl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_help_names_every_command_and_its_connection_settings() {
    let (ok, help, _) = ticketctl(&["--help"], &[]);
    assert!(ok);
    for word in [
        "dlq",
        "saga",
        "lag",
        "token",
        "--nats-url",
        "--user",
        "--password",
    ] {
        assert!(help.contains(word), "{word} missing from:\n{help}");
    }
    let (_, dlq, _) = ticketctl(&["dlq", "replay", "--help"], &[]);
    for word in [
        "--all",
        "--service",
        "--type",
        "--reason",
        "--older-than",
        "--dry-run",
    ] {
        assert!(dlq.contains(word), "{word} missing from:\n{dlq}");
    }
    let (_, saga, _) = ticketctl(&["saga", "--help"], &[]);
    assert!(saga.contains("show") && saga.contains("stuck"), "{saga}");
}

#[test]
fn a_token_it_makes_verifies_with_the_same_secret() {
    let secret = "a-secret-of-more-than-thirty-two-bytes!";
    let (ok, out, err) = ticketctl(
        &["token", "--user", "ops", "--role", "admin", "--ttl", "60"],
        &[("JWT_SECRET", secret)],
    );
    assert!(ok, "{err}");
    let claims = nats::web::Auth::new(secret)
        .verify(out.trim())
        .expect("valid");
    assert_eq!(claims.sub, "ops");
    assert_eq!(claims.role.as_deref(), Some("admin"));
}
