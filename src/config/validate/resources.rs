//! `[[resources]]`: the APIs access tokens may be issued for (RFC 8707).

use std::time::Duration;

use url::Url;

use super::Validator;
use crate::claims::ScopeCatalog;
use crate::config::file::ResourceFile;
use crate::config::settings::Resource;
use crate::tokens::Alg;

impl Validator {
    pub(super) fn resources(
        &mut self,
        files: Vec<ResourceFile>,
        scopes: Option<&ScopeCatalog>,
        issuer: Option<&str>,
    ) -> Vec<Resource> {
        let mut out: Vec<Resource> = Vec::new();
        for (i, r) in files.into_iter().enumerate() {
            let key = format!("resources[{i}]");
            // RFC 8707 §2: an absolute URI, without a fragment. No whitespace: a request's
            // resources are kept space-separated.
            match Url::parse(&r.uri) {
                Ok(u) if u.fragment().is_none() && !r.uri.contains(char::is_whitespace) => {}
                _ => self.problem(format!(
                    "{key}.uri: `{}` is not an absolute URI without a fragment (RFC 8707 §2), \
                     like \"https://api.example.com\"",
                    r.uri
                )),
            }
            // Herald itself is no API: a token for it would pass as one for its own endpoints.
            if issuer.is_some_and(|iss| iss.trim_end_matches('/') == r.uri.trim_end_matches('/')) {
                self.problem(format!(
                    "{key}.uri: `{}` is this server's issuer; an API needs its own identifier",
                    r.uri
                ));
            }
            if out.iter().any(|o| o.uri == r.uri) {
                self.problem(format!("{key}.uri: `{}` is used twice", r.uri));
            }
            if r.scopes.is_empty() {
                self.problem(format!(
                    "{key}.scopes: name the scopes that belong to this API; its access tokens \
                     carry no others"
                ));
            }
            if let Some(catalog) = scopes {
                for s in &r.scopes {
                    if catalog.get(s).is_none() {
                        self.problem(format!(
                            "{key}.scopes: `{s}` is not a defined scope; add [scopes.\"{s}\"] \
                             with a description for the consent page"
                        ));
                    }
                }
            }
            let access_token_ttl = r.access_token_ttl.as_deref().and_then(|raw| {
                self.duration(
                    &format!("{key}.access_token_ttl"),
                    Some(raw),
                    Duration::ZERO,
                )
            });
            let alg = match r.access_token_signed_response_alg.as_deref() {
                None => None,
                Some(raw) => {
                    let alg = Alg::parse(raw);
                    if alg.is_none() {
                        self.problem(format!(
                            "{key}.access_token_signed_response_alg: `{raw}` is not supported; \
                             use \"RS256\", \"ES256\" or \"EdDSA\""
                        ));
                    }
                    alg
                }
            };
            out.push(Resource {
                uri: r.uri,
                scopes: r.scopes,
                access_token_ttl,
                alg,
            });
        }
        out
    }
}
