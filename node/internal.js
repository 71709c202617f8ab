'use strict'
// Filled by index.js with what the package's other modules (wire, http,
// grpc, otel) share with it; not part of the public API (package.json's
// "exports" does not list it).
module.exports = {}
