//! PostgreSQL URLs as the tools derive and show them. libpq's syntax allows several hosts
//! (`postgres://a:5432,b:5432/db`), which a general URL parser refuses, so only the part
//! named is touched: user, hosts and query parameters (`sslmode`, `sslrootcert`, …) stay.

/// A URL cut where libpq reads its parts: `postgres://`, the authority (user and hosts), the
/// path (`/database`, maybe empty) and the query (from `?`, maybe empty).
struct Parts<'a> {
    scheme: &'a str,
    authority: &'a str,
    query: &'a str,
}

fn parts(url: &str) -> Option<Parts<'_>> {
    let scheme_end = url.find("://")? + 3;
    let (head, query) = url.split_at(url.find('?').unwrap_or(url.len()));
    let rest = head.get(scheme_end..)?;
    let authority = rest.split('/').next().unwrap_or(rest);
    Some(Parts {
        scheme: &url[..scheme_end],
        authority,
        query,
    })
}

/// `url` naming the database `name` instead, all else kept; None when `url` is not a URL.
pub fn naming_database(url: &str, name: &str) -> Option<String> {
    let p = parts(url)?;
    Some(format!("{}{}/{name}{}", p.scheme, p.authority, p.query))
}

/// `url` fit for a log or a message: a password, before the host or as the `password`
/// parameter, replaced by `***`. Anything that is not a URL is shown whole.
pub fn redacted(url: &str) -> String {
    let Some(p) = parts(url) else {
        return url.to_owned();
    };
    let authority = match p.authority.rsplit_once('@') {
        Some((userinfo, hosts)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{hosts}"),
            None => p.authority.to_owned(),
        },
        None => p.authority.to_owned(),
    };
    let path_start = p.scheme.len() + p.authority.len();
    let path = &url[path_start..url.len() - p.query.len()];
    let query = match p.query.strip_prefix('?') {
        Some(pairs) => {
            let pairs: Vec<String> = pairs
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some(("password", _)) => "password=***".to_owned(),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("?{}", pairs.join("&"))
        }
        None => String::new(),
    };
    format!("{}{authority}{path}{query}", p.scheme)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_database_keeps_user_hosts_and_tls_parameters() {
        let url = "postgres://app:s3cret@db1:5432,db2:5432/crossprov?sslmode=verify-full&sslrootcert=/etc/ca.pem";
        assert_eq!(
            naming_database(url, "crossprov_test_1").as_deref(),
            Some("postgres://app:s3cret@db1:5432,db2:5432/crossprov_test_1?sslmode=verify-full&sslrootcert=/etc/ca.pem")
        );
        assert_eq!(
            naming_database("postgresql://localhost", "x").as_deref(),
            Some("postgresql://localhost/x")
        );
        assert_eq!(
            naming_database("postgres://h?sslmode=require", "x").as_deref(),
            Some("postgres://h/x?sslmode=require")
        );
        assert_eq!(naming_database("host=db dbname=x", "y"), None);
    }

    #[test]
    fn a_shown_url_hides_every_password_and_keeps_the_rest() {
        assert_eq!(
            redacted("postgres://app:s3cret@db:5432/crossprov?sslmode=verify-full&password=p2&sslrootcert=/ca.pem"),
            "postgres://app:***@db:5432/crossprov?sslmode=verify-full&password=***&sslrootcert=/ca.pem"
        );
        assert_eq!(
            redacted("postgres://app@db/crossprov"),
            "postgres://app@db/crossprov"
        );
        assert_eq!(redacted("postgres://db"), "postgres://db");
        assert_eq!(
            redacted("sqlite:///var/lib/crossprov.db"),
            "sqlite:///var/lib/crossprov.db"
        );
    }
}
