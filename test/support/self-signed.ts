/**
 * A throwaway self-signed certificate for 127.0.0.1 and localhost, valid for a day, for the
 * tests that serve wss://. Made by `openssl`, which they need: without it they fail and say so
 * (they are not skipped).
 */
import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

export const selfSigned = (): { readonly key: Buffer; readonly cert: Buffer } => {
  const dir = mkdtempSync(join(tmpdir(), "canon-cert-"))
  try {
    execFileSync("openssl", [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
      "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
      "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"),
    ], { stdio: "ignore" })
    return { key: readFileSync(join(dir, "key.pem")), cert: readFileSync(join(dir, "cert.pem")) }
  } catch (cause) {
    throw new Error("The wss:// tests make a certificate with openssl, which failed or is missing: install openssl (apt-get install openssl).", { cause })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
