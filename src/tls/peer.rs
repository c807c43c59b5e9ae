//! The client certificate a connection presented (mutual TLS), read once when the connection
//! opens and kept with it, where requests find it (`HttpRequest::conn_data`).

use std::any::Any;

use actix_tls::accept::rustls_0_23::TlsStream;
use actix_web::dev::Extensions;
use actix_web::rt::net::TcpStream;
use rustls::pki_types::CertificateDer;
use simple_asn1::ASN1Block;

use crate::domain::access::ClientCertificate;

/// For `HttpServer::on_connect`: keeps the names of the client certificate, if the
/// connection presented one. rustls has verified it against the client CA by then (a
/// certificate that does not chain to it fails the handshake, so never gets here).
pub fn on_connect(connection: &dyn Any, data: &mut Extensions) {
    let Some(tls) = connection.downcast_ref::<TlsStream<TcpStream>>() else {
        return;
    };
    let (_, session) = tls.get_ref();
    if let Some(names) = session
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(names)
    {
        data.insert(names);
    }
}

/// The Subject CN and DNS names of an end-entity certificate; None when it does not parse.
pub fn names(cert: &CertificateDer<'_>) -> Option<ClientCertificate> {
    let parsed = webpki::EndEntityCert::try_from(cert).ok()?;
    Some(ClientCertificate {
        common_name: common_name(parsed.subject()),
        dns_names: parsed.valid_dns_names().map(str::to_owned).collect(),
    })
}

/// id-at-commonName (2.5.4.3).
const COMMON_NAME: [u64; 4] = [2, 5, 4, 3];

/// The (first) CN of a DER Name's contents: a sequence of RDN SETs of {type, value} pairs.
fn common_name(subject: &[u8]) -> Option<String> {
    let rdns = simple_asn1::from_der(subject).ok()?;
    rdns.iter()
        .filter_map(|rdn| match rdn {
            ASN1Block::Set(_, pairs) => Some(pairs),
            _ => None,
        })
        .flatten()
        .find_map(|pair| match pair {
            ASN1Block::Sequence(_, parts) => match parts.as_slice() {
                [ASN1Block::ObjectIdentifier(_, oid), value]
                    if oid.as_vec::<u64>().is_ok_and(|v| v == COMMON_NAME) =>
                {
                    text(value)
                }
                _ => None,
            },
            _ => None,
        })
}

fn text(value: &ASN1Block) -> Option<String> {
    match value {
        ASN1Block::UTF8String(_, s)
        | ASN1Block::PrintableString(_, s)
        | ASN1Block::IA5String(_, s)
        | ASN1Block::TeletexString(_, s)
        | ASN1Block::UniversalString(_, s)
        | ASN1Block::BMPString(_, s) => Some(s.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Name's contents: RDNs C=CN, O=…, CN=<cn> (UTF8String), as a CA would write them.
    fn subject(cn: &str) -> Vec<u8> {
        fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
            assert!(body.len() < 128);
            [&[tag, body.len() as u8][..], body].concat()
        }
        let pair = |oid_last: u8, tag: u8, value: &str| {
            tlv(
                0x31,
                &tlv(
                    0x30,
                    &[
                        tlv(0x06, &[0x55, 0x04, oid_last]),
                        tlv(tag, value.as_bytes()),
                    ]
                    .concat(),
                ),
            )
        };
        [
            pair(6, 0x13, "CN"),
            pair(10, 0x0c, "中国移动"),
            pair(3, 0x0c, cn),
        ]
        .concat()
    }

    #[test]
    fn the_common_name_is_read_among_other_attributes() {
        assert_eq!(common_name(&subject("JN-A")).as_deref(), Some("JN-A"));
        assert_eq!(
            common_name(&subject("昆明-001")).as_deref(),
            Some("昆明-001")
        );
    }

    #[test]
    fn a_name_without_cn_or_garbage_has_none() {
        assert_eq!(common_name(&[]), None);
        assert_eq!(common_name(&[0x31, 0x05, 0x30]), None);
    }
}
