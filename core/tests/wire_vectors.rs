//! The shared header vectors (tests/wire/vectors.json) against the core's
//! codecs. Every language runs the same file against its own face of them.

use polyctx::wire::{
    format_baggage, format_grpc_timeout, format_timeout_ms, parse_baggage, parse_grpc_timeout, parse_timeout_ms,
    parse_traceparent, parse_tracestate, BaggageEntry, Malformed,
};
use serde_json::{json, Value};

const VECTORS: &str = include_str!("../../tests/wire/vectors.json");

fn inputs(v: &Value) -> Vec<String> {
    if let Some(r) = v.get("input_repeat") {
        let unit = r[1].as_str().unwrap().repeat(r[2].as_u64().unwrap() as usize);
        return vec![format!("{}{unit}{}", r[0].as_str().unwrap(), r[3].as_str().unwrap())];
    }
    match &v["input"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().map(|s| s.as_str().unwrap().to_owned()).collect(),
        other => panic!("input {other}"),
    }
}

fn timeout(parsed: Result<Option<u64>, Malformed>) -> Value {
    match parsed {
        Ok(Some(ns)) => json!(ns.to_string()),
        Ok(None) => Value::Null,
        Err(_) => json!("malformed"),
    }
}

fn entries(v: &Value) -> Vec<(String, BaggageEntry)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let properties = m[2]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p[0].as_str().unwrap().to_owned(), p[1].as_str().map(str::to_owned)))
                .collect();
            let entry = BaggageEntry {
                value: m[1].as_str().unwrap().to_owned(),
                properties,
            };
            (m[0].as_str().unwrap().to_owned(), entry)
        })
        .collect()
}

fn baggage_json(b: &[(String, BaggageEntry)]) -> Value {
    json!(b
        .iter()
        .map(|(k, e)| json!([
            k,
            e.value,
            e.properties.iter().map(|(p, v)| json!([p, v])).collect::<Vec<_>>()
        ]))
        .collect::<Vec<_>>())
}

fn run(v: &Value) -> Value {
    let ns = |v: &Value| v["input"].as_str().unwrap().parse::<i64>().unwrap();
    match v["kind"].as_str().unwrap() {
        "grpc-timeout" => timeout(parse_grpc_timeout(&inputs(v)[0])),
        "timeout-ms" => {
            let header = match v["header"].as_str().unwrap() {
                "connect-timeout-ms" => "connect-timeout-ms",
                _ => "request-timeout-ms",
            };
            timeout(parse_timeout_ms(header, &inputs(v)[0]))
        }
        "format-grpc-timeout" => json!(format_grpc_timeout(ns(v))),
        "format-timeout-ms" => json!(format_timeout_ms(ns(v))),
        "traceparent" => match parse_traceparent(&inputs(v)) {
            Some(tc) => json!({"trace_id": tc.trace_id_hex(), "span_id": tc.span_id_hex(), "flags": tc.flags}),
            None => Value::Null,
        },
        "tracestate" => json!(parse_tracestate(&inputs(v))),
        "baggage" => baggage_json(&parse_baggage(&inputs(v))),
        "format-baggage" => {
            let e = entries(&v["input"]);
            match format_baggage(e.iter().map(|(k, e)| (k.as_str(), e))) {
                Ok(text) => json!(text),
                Err(_) => json!("malformed"),
            }
        }
        kind => panic!("unknown vector kind {kind}"),
    }
}

#[test]
fn every_vector_gives_its_expected_result() {
    let doc: Value = serde_json::from_str(VECTORS).unwrap();
    let vectors = doc["vectors"].as_array().unwrap();
    assert!(vectors.len() >= 60);
    let failures: Vec<String> = vectors
        .iter()
        .filter_map(|v| {
            let got = run(v);
            (got != v["expect"]).then(|| format!("{} / {}: expected {}, got {got}", v["kind"], v["name"], v["expect"]))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} vectors failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
