/**
 * Small saved Automerge documents that cost A.load seconds (made by Automerge itself, honest
 * documents: only their shape is hostile). Kept as bytes because making them takes 5-15 s:
 *
 * - LIST_1M: `A.from({ l: [] })`, 100 changes each inserting 10,000 nulls at index 0, then
 *   100 deleting 10,000: 1,054 bytes, 1,000,000 ops and 1,000,000 successors (run-length
 *   columns; nulls have no value bytes). A.load: 3.7-4.8 s and 233 MB on this project's machine.
 * - EMPTY_300K: `A.init()` and 300,000 `A.emptyChange`: 208 bytes. A.load: 0.9-1.2 s.
 */
const bytes = (b64: string): Uint8Array => Uint8Array.from(Buffer.from(b64, "base64"))

export const LIST_1M = bytes(
  "hW9Kg55lJmIAkwgBEBjL1UgEvcNQsvYKGQ0v6LUBCBGfjLCN9KKMgm813FhCTnpCOnrY4w7fS3qxD5U3PIgHAQMDAxMHI54B" +
  "QAVDBVYDDQEGAgYZEhuUBRUHIQQrGjQEQgZWBIABBoEBBIMBCMkBAMkBAX8ByAGQzgB/39/B2AYGAH8BEAB/AQ8AfwECAH8B" +
  "BQB/AQkAfwEFAH8BBwB/AQQAfwEDAH8BAwB/AQMAfwEHAH8BAwB7AQABAAECAHYBAAEAAQABAAEAAgF+AAECAH8BAgB/AQMA" +
  "fgEAAgF+AAECAAIBfgABAwB9AgEAAgF/AAIBfgIAAgECAn0BAAEDAH8BBQB/AQUAfwEEAH8BBgB/AQUAfwEDAH8AyAEBfwDH" +
  "AQHJAQcAAcCEPQAAAcCEPQFjYOo/x8DAwDhKjoZAPxVTAgAlzGk0FXEAhnHa933f933ft08lIhIRkYhIRCQiumdMJSXcM5KS" +
  "uP5JSWkakZTc5pCUuIa0iDONlMRxTUoidc59vz0fnvPT01focdmbokr19BXqzs2kYaMuNcVbmHikGGdAl2zQpbbeQP67XpfU" +
  "g63SPaSSNhQ+rdOlSmPIxyDZRCOucC3cJiPSvgZu7jYmDSmGG9PVq+FWGcsXkNQNE+npKrg/TATtSrjPtvMEyUabcpUr4NaY" +
  "kjCkJt2MyVkOt8OMblwGt2iHfBVJXTKXXi+F+9lc+LcELreTv49kKQuubjHcUgsSi9QkWDJFi+A2WtIdC+Hm7JJvI6mzVtLH" +
  "BXDfWAlRSNV1a149H26rNSfPg5u/m6QgNZE2TNVcuNU2dDhSm2YrP5oD97et9H023Od7hGtI1UU7vmwWXMmOC0WqWXuSORNu" +
  "tz1TPwNuyV46DqmNd5BfTIf7zUH6Mw3uw33CHaTqjCNfOxVuhSOnRKqTnQg/BW6LE9M2GW7efjoVqY1wlt9OgvvBWTqHVN5y" +
  "ER5PhPvLhW+eALfgAJeEVDOupHw8XNGVOYUUM9zorHFwu9zkL2PhvjooXUYqr7gLL8fA/erOd42Gm3WIy0CqT3kQcRTccg+G" +
  "QYpJnnTBSLjNnvLPEXCfHJZuIpXnvYT3w+G+8+IjkGyqN5c3DG6bN2kZCpc/wiQjRaUPXTEEbq2PfBpJ3fWVsgfD7fQVGgbB" +
  "LT7KxyPZOD+uZCDcej/SPQBu5jGGRYqh/rTUH26ZvxyDpBIDpMJ+cJsChPa+cHOP82lINjyQq+4DtyqQRCI1KUFMfm+4chDd" +
  "2guu+oRMkFR0sFTZE25NsBCGVKWH8Dk94HaEcI36cItOkgSkJlbBlOrBrVPozv9/AWwAwIQ9wYQ9AKtj3LjNpv8cA2P9w8d1" +
  "o/RoOIymg8co+QAAAcCEPX8CwIQ9AcGEPQB/AMCEPQHAhD0Af8KEPb+EPQHIAQ==",
)

export const EMPTY_300K = bytes(
  "hW9Kg7QmxjMAxQEBEAoKCgoKCgoKCgoKCgoKCgoBdn80XZxhsJfpJ1+mRzPwQY2SInQ68CtKfZCQHRLcm5MHAQQDBBMEI2NA" +
  "BkMGVgQA4KcSAOCnEgHgpxIAf5ngwdgG2OEAAH8Bp+wBAH8B+ZIBAH8B0poBAH8Bh+wAAH8BzaUBAH8BwIYBAH8B3/0AAH8B" +
  "0oUBAH8B0JABAH8BzcEBAH8B/v8BAH8BnJsBAH8B1pABAH8B6oEBAH8ByhAAfwDfpxIBfwDepxIB4KcSB9+nEg==",
)
