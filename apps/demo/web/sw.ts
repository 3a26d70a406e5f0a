/**
 * The service worker: caches the app shell (page, script, styles, icon, manifest) when it
 * installs, so the board loads with no network. The page is fetched from the network first
 * (fresh when online) and from the cache when that fails; the versioned files come from the
 * cache. A new build is a new cache (named by the build's hash); old ones are deleted.
 * The WebSocket (/sync) never goes through here.
 */
declare const __CANON_VERSION__: string
declare const __CANON_SHELL__: string[]

interface ExtendableEvent extends Event {
  waitUntil(promise: Promise<unknown>): void
}
interface FetchEvent extends ExtendableEvent {
  readonly request: Request
  respondWith(response: Response | Promise<Response>): void
}
interface WorkerScope {
  readonly location: Location
  skipWaiting(): Promise<void>
  readonly clients: { claim(): Promise<void> }
  addEventListener(type: "install" | "activate", fn: (e: ExtendableEvent) => void): void
  addEventListener(type: "fetch", fn: (e: FetchEvent) => void): void
}

const scope = self as unknown as WorkerScope
const PREFIX = "canon-board-"
const CACHE = `${PREFIX}${__CANON_VERSION__}`
const PAGE_TIMEOUT_MS = 4000

scope.addEventListener("install", (e) => {
  e.waitUntil(caches.open(CACHE).then((c) => c.addAll(__CANON_SHELL__)).then(() => scope.skipWaiting()))
})

scope.addEventListener("activate", (e) => {
  e.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith(PREFIX) && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => scope.clients.claim()),
  )
})

const cachedPage = async (): Promise<Response> =>
  (await caches.match("/", { cacheName: CACHE })) ??
  new Response("You are offline and this board has not been opened here before.", { status: 503, headers: { "Content-Type": "text/plain; charset=utf-8" } })

/** The network's page, or the cached one if the network fails or is too slow. */
const page = async (request: Request): Promise<Response> => {
  try {
    const response = await Promise.race([
      fetch(request),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error("slow")), PAGE_TIMEOUT_MS)),
    ])
    return response.ok ? response : await cachedPage()
  } catch {
    return cachedPage()
  }
}

scope.addEventListener("fetch", (e) => {
  const request = e.request
  if (request.method !== "GET") return
  const url = new URL(request.url)
  if (url.origin !== scope.location.origin) return
  if (request.mode === "navigate") {
    if (url.pathname === "/" || url.pathname === "/index.html") e.respondWith(page(request))
    return
  }
  if (!__CANON_SHELL__.includes(url.pathname + url.search)) return
  e.respondWith(caches.match(request, { cacheName: CACHE }).then((hit) => hit ?? fetch(request)))
})
