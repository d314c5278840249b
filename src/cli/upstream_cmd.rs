//! `herald check-upstream ID`: the upstream's discovery, JWKS and Herald's credentials there,
//! each step printed (see `upstream::check`). Exit 0 only when every step passed.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::upstream::UpstreamClients;

pub fn check_upstream(path: PathBuf, id: &str) -> ExitCode {
    let Some(settings) = super::common::load_in_effect(&path) else {
        return ExitCode::FAILURE;
    };
    let Some(up) = settings.upstream(id) else {
        let ids: Vec<&str> = settings.upstreams.iter().map(|u| u.id.as_str()).collect();
        eprintln!(
            "herald: no upstream `{id}` in the configuration in effect; its upstreams: {}",
            ids.join(", ")
        );
        return ExitCode::FAILURE;
    };
    let callback = settings.callback_url(id);
    let Some(steps) =
        super::common::block_on(async { UpstreamClients::new().check(up, &callback).await })
    else {
        return ExitCode::FAILURE;
    };
    for s in &steps {
        println!(
            "{} {:<12} {}",
            if s.ok { "ok  " } else { "FAIL" },
            s.step,
            s.detail
        );
    }
    if crate::upstream::check_passed(&steps) {
        println!("upstream `{id}` is ready");
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
