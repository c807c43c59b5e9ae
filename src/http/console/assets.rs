//! The console's scripts, styles and vendored files, compiled into the binary: the machines
//! that run it are offline, and nothing needs building with Node.

use actix_web::http::header;
use actix_web::{web, HttpResponse};

/// Name, content type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "console.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../assets/console/console.css"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../assets/console/console.js"),
    ),
    (
        "verify.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../assets/console/verify.js"),
    ),
    (
        "keys.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../assets/console/keys.js"),
    ),
    (
        "devicekey.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../assets/console/devicekey.js"),
    ),
];

pub async fn serve(name: web::Path<String>) -> HttpResponse {
    match ASSETS.iter().find(|(n, _, _)| *n == name.as_str()) {
        Some((_, content_type, bytes)) => HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, *content_type))
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .body(*bytes),
        None => HttpResponse::NotFound()
            .insert_header((header::CONTENT_TYPE, "text/plain; charset=utf-8"))
            .body("没有这个文件 / no such file"),
    }
}
