// The footage page's upload manager. Each file goes through the JSON API the SDK uses:
// hash it (sha256, read in slices), find an open session for the same file or create one,
// PUT the missing parts (File.slice, a few at once, each retried on a transient failure),
// then complete. Nothing holds a whole file in memory; Cancel aborts the session.
// Where the server offers it (S3 storage), parts skip the API: the session is made `direct`,
// the API signs a URL for each part (asked in batches, and again when storage says one has
// run out), the browser PUTs the part's bytes straight to storage with no cookie or header of
// ours, and completion answers 202 while a worker reads the whole file through; the page asks
// after it until the clip is in the library, or shows why it was refused.
// Pause stops sending (parts in flight are dropped and sent again later); Resume, a page
// reload that picks the same file again, or the network coming back sends only the parts the
// server does not have. One bar over all files sums them, with speed and time left.
// A file the library already holds (same sha256) is refused by the server, when the session
// is made or, if it arrived meanwhile, at completion: it is flagged with a link to that clip
// and an "Upload anyway" button, which starts it again with `allow_duplicate`.

import { api, apiAnswer, ApiError, problemText } from "./api.js";
import { hashFile } from "./sha256.js";

const PARTS_AT_ONCE = 3;
const TRIES_PER_PART = 4;
const RETRY_DELAY_MS = 500;
// Signed part URLs asked for in one request (the API's limit), and so used within their life.
const URLS_PER_ASK = 100;
// How often to ask after a direct upload being checked: soon, then less often.
const CHECK_FIRST_MS = 1000;
const CHECK_LAST_MS = 5000;
// Browsers leave `File.type` empty for some video containers; the server checks what it gets.
const TYPES = {
  mp4: "video/mp4", m4v: "video/mp4", mov: "video/quicktime", qt: "video/quicktime",
  mkv: "video/x-matroska", webm: "video/webm", png: "image/png", jpg: "image/jpeg",
  jpeg: "image/jpeg", tif: "image/tiff", tiff: "image/tiff",
};

const form = document.getElementById("upload-form");
const input = document.getElementById("upload-files");
const list = document.getElementById("uploads");
const error = document.getElementById("upload-error");
const dropZone = document.getElementById("drop-zone");

function bytes(count) {
  const units = ["bytes", "kB", "MB", "GB", "TB"];
  let amount = count;
  let unit = 0;
  while (amount >= 1000 && unit < units.length - 1) {
    amount /= 1000;
    unit += 1;
  }
  return unit ? `${amount.toFixed(1)} ${units[unit]}` : `${amount} bytes`;
}

function seconds(count) {
  if (!Number.isFinite(count)) return "";
  if (count < 60) return `about ${Math.max(1, Math.round(count))} s left`;
  return `about ${Math.round(count / 60)} min left`;
}

// Sending speed over the last few seconds, from a count of bytes sent that only grows: a
// pause or a retried part neither stalls the figure for long nor makes it go backwards.
class Rate {
  constructor(windowMs = 5000) {
    this.windowMs = windowMs;
    this.samples = [];
  }

  add(sent) {
    const now = performance.now();
    this.samples.push([now, sent]);
    while (this.samples.length > 2 && now - this.samples[0][0] > this.windowMs) this.samples.shift();
  }

  reset() {
    this.samples = [];
  }

  get perSecond() {
    if (this.samples.length < 2) return 0;
    const [firstTime, firstSent] = this.samples[0];
    const [lastTime, lastSent] = this.samples[this.samples.length - 1];
    return lastTime - firstTime >= 500 ? ((lastSent - firstSent) * 1000) / (lastTime - firstTime) : 0;
  }
}

// "1.2 MB of 4.0 MB · 3.1 MB/s · about 1 s left"
function progressText(done, total, rate) {
  const speed = rate.perSecond;
  const left = speed > 0 ? seconds((total - done) / speed) : "";
  return [`${bytes(done)} of ${bytes(total)}`, speed ? `${bytes(speed)}/s` : "", left].filter(Boolean).join(" · ");
}

function button(label, filename, onClick) {
  const element = document.createElement("button");
  element.type = "button";
  element.className = "secondary small";
  const hidden = document.createElement("span");
  hidden.className = "visually-hidden";
  hidden.textContent = ` ${filename}`;
  element.append(label, hidden);
  element.addEventListener("click", onClick);
  return element;
}

function relabel(element, label) {
  element.firstChild.textContent = label;
}

const isDuplicate = (failure) =>
  failure instanceof ApiError && failure.status === 409 && String(failure.problem?.type ?? "").endsWith("/duplicate-asset");

// A failure of the connection or of the server, not of the file: asking again may work.
const isNetwork = (failure) =>
  failure instanceof ApiError && (failure.transient || failure.status === 0 || failure.status >= 500);

const sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(signal.reason);
    }, { once: true });
  });

// One PUT of one part, with upload progress (fetch reports none): to this server's API, or
// (`direct`) to a signed storage URL on another origin, which gets no cookie (XHR sends none
// across origins unless `withCredentials`) and no header of ours. Resolves on 2xx; rejects
// with an ApiError whose `transient` says whether sending it again may work, and `expired`
// that storage refused the URL, as it does once a signature has run out.
function putPart(url, blob, onProgress, signal, { direct = false } = {}) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("PUT", url);
    if (!direct) request.setRequestHeader("Accept", "application/json");
    request.upload.addEventListener("progress", (event) => onProgress(event.loaded));
    request.addEventListener("load", async () => {
      if (request.status >= 200 && request.status < 300) return resolve();
      if (direct) return reject(storageRefusal(request.status));
      const failure = await problemText(new Response(request.response, { status: request.status }));
      // A clash with a concurrent send of the same part, or the server's trouble: try again.
      failure.transient = request.status === 409 || request.status >= 500;
      reject(failure);
    });
    request.addEventListener("error", () => {
      const failure = new ApiError("The connection dropped while sending a part.", 0);
      failure.transient = true;
      reject(failure);
    });
    request.addEventListener("abort", () => reject(signal.reason));
    signal.addEventListener("abort", () => request.abort(), { once: true });
    request.send(blob);
  });
}

// Storage answers in XML, not problem details: its status is all that is worth telling.
function storageRefusal(status) {
  const expired = status === 403;
  const failure = new ApiError(
    expired ? "Storage refused the part's signed link (it may have run out)." : `Storage could not take the part (status ${status}).`,
    status,
  );
  failure.expired = expired;
  // An expired link is signed again; storage's own trouble may pass.
  failure.transient = expired || status >= 500;
  return failure;
}

// States that still count towards the overall bar; the others have left it.
const UNDER_WAY = new Set(["reading", "sending", "retrying", "paused", "checking", "done"]);
// States in which a file is being read or sent, and so can be paused.
const SENDING = new Set(["reading", "sending", "retrying"]);

class FileUpload {
  constructor(file, rights, overall) {
    this.file = file;
    this.rights = rights;
    this.overall = overall;
    this.controller = new AbortController();
    this.session = null;
    this.sha256 = null;
    this.allowDuplicate = false;
    this.paused = false;
    this.pausedByNetwork = false;
    this.sent = new Map(); // part number -> bytes the server has for it (or is receiving)
    this.urls = new Map(); // part number -> signed storage URL (direct sessions)
    this.signing = new Map(); // part number -> the request for its URL, while one is asked
    this.transferred = 0; // bytes put on the wire, retries included: what the speed is of
    this.rate = new Rate();
    this.row = this.render();
  }

  render() {
    const row = document.createElement("li");
    row.className = "upload";
    const name = document.createElement("span");
    name.className = "upload-name";
    name.textContent = this.file.name;
    this.bar = document.createElement("progress");
    this.bar.max = Math.max(1, this.file.size);
    this.bar.value = 0;
    this.bar.setAttribute("aria-label", `Upload of ${this.file.name}`);
    this.state = document.createElement("span");
    this.state.className = "upload-state";
    this.state.setAttribute("role", "status");
    this.pauseButton = button("Pause", this.file.name, () => (this.paused ? this.resume() : this.pause()));
    this.cancelButton = button("Cancel", this.file.name, () => this.cancel());
    this.actions = document.createElement("span");
    this.actions.className = "upload-actions";
    this.actions.append(this.pauseButton, this.cancelButton);
    row.append(name, this.bar, this.state, this.actions);
    return row;
  }

  say(text, kind = "") {
    this.state.textContent = text;
    this.row.dataset.state = kind;
    this.overall.update();
  }

  get kind() {
    return this.row.dataset.state;
  }

  get counted() {
    return UNDER_WAY.has(this.kind);
  }

  get contentType() {
    const extension = this.file.name.split(".").pop().toLowerCase();
    return this.file.type || TYPES[extension] || null;
  }

  async start() {
    const signal = this.controller.signal;
    try {
      if (!this.contentType) {
        throw new ApiError(`Cannot tell what kind of file ${this.file.name} is; upload a video or a still.`, 0);
      }
      if (!this.sha256) {
        this.say("Reading the file to fingerprint it…", "reading");
        this.sha256 = await hashFile(this.file, {
          signal,
          onProgress: (done) => this.say(`Reading the file to fingerprint it… ${Math.floor((100 * done) / Math.max(1, this.file.size))}%`, "reading"),
        });
      }
      const sha256 = this.sha256;
      // Asked afresh on every start, so a resume trusts only what the server has stored.
      this.session = (await this.resumable(sha256, signal)) ?? (await this.create(sha256, signal));
      this.sent.clear();
      for (const part of this.session.parts) this.sent.set(part.part_number, part.size);
      // URLs are signed afresh for each run, so a resume after a long pause sends none stale.
      this.urls = new Map();
      this.signing = new Map();
      this.rate.reset();
      this.progress();
      await this.send(this.missing(), signal);
      await this.complete(signal);
    } catch (failure) {
      if (signal.aborted) return;
      if (isDuplicate(failure)) return this.flagDuplicate(failure.problem.existing_asset_id);
      const text = failure instanceof ApiError ? failure.message : "Something went wrong in the browser; try again.";
      if (isNetwork(failure) && this.session) {
        // The server keeps what it received: offer to carry on rather than start over.
        this.paused = true;
        this.actions.hidden = false;
        relabel(this.pauseButton, "Resume");
        return this.say(`${text} Resume to send the rest.`, "failed");
      }
      this.say(text, "failed");
      this.actions.remove();
    }
  }

  pause({ byNetwork = false } = {}) {
    if (this.paused || !SENDING.has(this.kind)) return;
    this.paused = true;
    this.pausedByNetwork = byNetwork;
    this.controller.abort(new DOMException("Paused", "AbortError"));
    relabel(this.pauseButton, "Resume");
    const why = byNetwork ? "The network is down; this carries on when it is back." : "Paused.";
    this.say(`${why} ${bytes(this.received)} of ${bytes(this.file.size)} sent; nothing sent is lost.`, "paused");
  }

  resume() {
    if (!this.paused) return;
    this.paused = false;
    this.pausedByNetwork = false;
    this.controller = new AbortController();
    relabel(this.pauseButton, "Pause");
    this.start();
  }

  // An open session for this very file (same name, size and contents) from an earlier try.
  async resumable(sha256, signal) {
    const open = await api("GET", `/v1/uploads?sha256=${sha256}&limit=200`, undefined, { signal });
    return open.items.find((u) => u.filename === this.file.name && u.size === this.file.size) ?? null;
  }

  create(sha256, signal) {
    const body = {
      filename: this.file.name,
      size: this.file.size,
      sha256,
      content_type: this.contentType,
      rights: this.rights,
      // Parts may go straight to storage; the answer's `transfer` says whether they do.
      direct: true,
    };
    if (this.allowDuplicate) body.allow_duplicate = true;
    return api("POST", "/v1/uploads", body, { signal });
  }

  // The server kept nothing of this file: say which clip it already is, and offer to store it anyway.
  flagDuplicate(existingId) {
    this.session = null;
    this.sent.clear();
    this.bar.value = 0;
    const link = document.createElement("a");
    link.href = `#asset-${existingId}`;
    link.textContent = "see the clip";
    this.state.replaceChildren("Already in your library (", link, "); not uploaded again.");
    this.row.dataset.state = "duplicate";
    this.overall.update();
    const anyway = button("Upload anyway", this.file.name, () => {
      this.allowDuplicate = true;
      anyway.replaceWith(this.actions);
      this.start();
    });
    this.actions.replaceWith(anyway);
  }

  get direct() {
    return this.session?.transfer === "direct";
  }

  missing() {
    const numbers = [];
    for (let number = 1; number <= this.session.part_count; number++) {
      if (!this.sent.has(number)) numbers.push(number);
    }
    return numbers;
  }

  get received() {
    let total = 0;
    for (const size of this.sent.values()) total += size;
    return total;
  }

  async send(numbers, signal) {
    const queue = [...numbers];
    const worker = async () => {
      for (let number = queue.shift(); number !== undefined; number = queue.shift()) {
        await this.sendPart(number, signal, queue);
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARTS_AT_ONCE, queue.length) }, worker));
  }

  // `waiting`: the parts still queued after this one, whose URLs may be asked for with its own.
  async sendPart(number, signal, waiting) {
    const { part_size: partSize, id } = this.session;
    const blob = this.file.slice((number - 1) * partSize, number * partSize);
    for (let attempt = 1; ; attempt++) {
      try {
        const url = this.direct ? await this.partUrl(number, waiting, signal) : `/v1/uploads/${id}/parts/${number}`;
        await putPart(url, blob, (loaded) => this.progress(number, loaded), signal, { direct: this.direct });
        this.progress(number, blob.size);
        return;
      } catch (failure) {
        this.sent.delete(number);
        if (failure.expired) this.urls.delete(number);
        if (!signal.aborted) this.progress();
        if (signal.aborted || !failure.transient || attempt >= TRIES_PER_PART) throw failure;
        this.say(`Part ${number} failed (${failure.message}); trying it again…`, "retrying");
        await sleep(RETRY_DELAY_MS * 2 ** (attempt - 1), signal);
      }
    }
  }

  // The signed URL for part `number`. One request signs it and the next parts waiting that
  // have none, so the URLs are asked for as the sending reaches them, not all at the start.
  async partUrl(number, waiting, signal) {
    const { urls, signing } = this; // this run's: a resume starts new ones
    if (!urls.has(number)) {
      let asked = signing.get(number);
      if (!asked) {
        const unsigned = waiting.filter((n) => !urls.has(n) && !signing.has(n));
        const batch = [number, ...unsigned].slice(0, URLS_PER_ASK);
        asked = api("POST", `/v1/uploads/${this.session.id}/part-urls`, { part_numbers: batch }, { signal })
          .then((signed) => {
            for (const part of signed.parts) urls.set(part.part_number, part.url);
          })
          .finally(() => {
            for (const n of batch) signing.delete(n);
          });
        for (const n of batch) signing.set(n, asked);
      }
      await asked;
    }
    return urls.get(number);
  }

  // Bytes of part `number` sent so far (none: only redraw).
  progress(number, loaded) {
    if (number !== undefined) {
      this.transferred += Math.max(0, loaded - (this.sent.get(number) ?? 0));
      this.sent.set(number, loaded);
    }
    this.rate.add(this.transferred);
    const done = this.received;
    this.bar.value = done;
    this.say(progressText(done, this.file.size, this.rate), "sending");
  }

  async complete(signal) {
    // The server is checking the whole file: nothing to hold, and nothing to take back, as
    // it refuses to remove an upload it is turning into an asset (the asset can be deleted),
    // so the row offers neither.
    this.actions.hidden = true;
    this.say("Checking the clip on the server…", "checking");
    const body = this.allowDuplicate ? { allow_duplicate: true } : undefined;
    const finish = () => apiAnswer("POST", `/v1/uploads/${this.session.id}/complete`, body, { signal });
    let answer;
    try {
      answer = await finish();
    } catch (failure) {
      const missing = failure.problem?.missing_parts;
      if (!(failure.status === 409 && Array.isArray(missing))) throw failure;
      // Parts the server never recorded: send them, then complete again.
      for (const number of missing) this.sent.delete(number);
      await this.send(missing, signal);
      answer = await finish();
    }
    // 202: a direct upload, which a worker now reads through; otherwise the asset itself.
    const asset = answer.status === 202 ? await this.checked(signal) : answer.body;
    this.bar.value = this.bar.max;
    this.say(`Uploaded: ${asset.media.width}×${asset.media.height} ${asset.media.codec}.`, "done");
    this.actions.remove();
    document.body.dispatchEvent(new CustomEvent("footage-changed"));
  }

  // Asks after a direct upload being checked, less often as it goes on, until it is an asset
  // (returned) or refused (thrown, as problem details in words, like any other refusal).
  async checked(signal) {
    this.say("Checking… every part has arrived; Rushes is reading the clip through before it joins your library.", "checking");
    for (let delay = CHECK_FIRST_MS; ; delay = Math.min(CHECK_LAST_MS, delay * 1.5)) {
      await sleep(delay, signal);
      let upload;
      try {
        upload = await api("GET", `/v1/uploads/${this.session.id}`, undefined, { signal });
        if (upload.status === "completed") return await api("GET", `/v1/assets/${upload.asset_id}`, undefined, { signal });
      } catch (failure) {
        // The check goes on on the server whatever happens to this page's connection.
        if (isNetwork(failure)) continue;
        throw failure;
      }
      if (upload.status === "failed") {
        const problem = upload.failure ?? {};
        throw await problemText(new Response(JSON.stringify(problem), { status: problem.status ?? 422 }));
      }
    }
  }

  async cancel() {
    this.paused = false;
    this.controller.abort(new DOMException("Cancelled", "AbortError"));
    this.actions.remove();
    this.say("Cancelling…", "cancelling");
    if (this.session) {
      try {
        await api("DELETE", `/v1/uploads/${this.session.id}`);
      } catch (failure) {
        this.say(`Stopped, but the server kept what it received: ${failure.message}`, "failed");
        return;
      }
    }
    this.say("Cancelled; nothing of it was kept.", "cancelled");
  }
}

// The bar over every file of the current batch: bytes the server has of the files still
// under way or done, against their sizes. A new batch starts once the last one has finished.
class Overall {
  constructor(element) {
    this.element = element;
    this.bar = element?.querySelector("progress");
    this.text = element?.querySelector("[data-overall-text]");
    this.uploads = [];
    this.rate = new Rate();
    this.spoken = 0;
    this.pending = null;
  }

  add(upload) {
    if (this.uploads.length && !this.uploads.some((u) => u.counted && u.kind !== "done")) {
      this.uploads = [];
      this.rate.reset();
    }
    this.uploads.push(upload);
  }

  update() {
    if (!this.element) return;
    const counted = this.uploads.filter((u) => u.counted);
    const total = counted.reduce((sum, u) => sum + u.file.size, 0);
    const done = counted.reduce((sum, u) => sum + (u.kind === "done" ? u.file.size : u.received), 0);
    // With nothing on the wire the last speed would linger, and promise a time left.
    if (counted.some((u) => SENDING.has(u.kind))) this.rate.add(this.uploads.reduce((sum, u) => sum + u.transferred, 0));
    else this.rate.reset();
    this.element.hidden = this.uploads.length < 2;
    this.bar.max = Math.max(1, total);
    this.bar.value = done;
    const finished = counted.filter((u) => u.kind === "done").length;
    const paused = counted.filter((u) => u.kind === "paused").length;
    const parts = [`${finished} of ${counted.length} files uploaded`, progressText(done, total, this.rate)];
    if (paused) parts.push(`${paused} paused`);
    // The text is an aria-live region: rewrite it at most once a second so it can be heard.
    const now = performance.now();
    if (now - this.spoken >= 1000 || finished === counted.length) {
      clearTimeout(this.pending);
      this.pending = null;
      this.spoken = now;
      this.text.textContent = parts.join(" · ");
    } else if (!this.pending) {
      // Written later rather than dropped, so a pause is told even if nothing follows it.
      this.pending = setTimeout(() => {
        this.pending = null;
        this.update();
      }, 1000 - (now - this.spoken));
    }
  }

  // The network went away or came back: hold every file that is sending, then carry on.
  offline() {
    for (const upload of this.uploads) upload.pause({ byNetwork: true });
  }

  online() {
    for (const upload of this.uploads) if (upload.pausedByNetwork) upload.resume();
  }
}

const overall = new Overall(document.getElementById("upload-overall"));

function showError(text) {
  error.textContent = text;
  error.hidden = !text;
}

function rights() {
  const kind = form.elements.rights.value;
  const ref = form.elements.licence_ref.value.trim();
  return kind === "licensed" ? { kind, licence_ref: ref } : { kind };
}

function upload(files) {
  if (!files.length) return showError("Choose at least one clip to upload.");
  if (!form.elements.attest.checked) {
    form.elements.attest.focus();
    return showError("Tick the statement that you have the right to train on these clips: uploads need it.");
  }
  const stated = rights();
  if (stated.kind === "licensed" && !stated.licence_ref) {
    form.elements.licence_ref.focus();
    return showError("Licensed clips need a licence reference.");
  }
  showError("");
  for (const file of files) {
    const job = new FileUpload(file, stated, overall);
    overall.add(job);
    list.append(job.row);
    job.start();
  }
  input.value = "";
}

if (form) {
  form.hidden = false;
  for (const note of document.querySelectorAll("[data-needs-script]")) note.hidden = true;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    upload([...input.files]);
  });
  window.addEventListener("offline", () => overall.offline());
  window.addEventListener("online", () => overall.online());
  dropZone.addEventListener("dragover", (event) => {
    event.preventDefault();
    dropZone.classList.add("dragging");
  });
  dropZone.addEventListener("dragleave", () => dropZone.classList.remove("dragging"));
  dropZone.addEventListener("drop", (event) => {
    event.preventDefault();
    dropZone.classList.remove("dragging");
    upload([...event.dataTransfer.files]);
  });
}
