// Follows one job's or generation's Server-Sent Events stream, the one the SDK follows.
// EventSource reconnects by itself and sends Last-Event-ID, so the server resumes after the
// last event this page saw: nothing is missed or shown twice. The server ends the stream once
// the work is final and every event is sent; the page then closes it rather than reconnect.
// (A final event alone does not end it: a resumed fine-tune's history has one mid-stream.)

export const FINAL = new Set(["succeeded", "failed", "cancelled"]);

// `onEvent(event)` for every event (the API's event object: seq, type, data, created_at);
// `onConnection(text)` with a word about the connection, for a status line.
export function follow(path, types, onEvent, onConnection = () => {}) {
  const source = new EventSource(path);
  let last = null;
  source.addEventListener("open", () => onConnection("Live"));
  source.addEventListener("error", () => {
    if (FINAL.has(last)) {
      source.close();
      onConnection("");
    } else if (source.readyState !== EventSource.CLOSED) {
      onConnection("Connection lost; reconnecting…");
    }
  });
  for (const type of types) {
    source.addEventListener(type, (message) => {
      const event = JSON.parse(message.data);
      last = event.type;
      onEvent(event);
    });
  }
  return source;
}

// Seconds as people say them: "45 s", "3 min", "1 h 20 min".
export function duration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return "–";
  if (seconds < 60) return `${Math.max(1, Math.round(seconds))} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
}

export function setStatus(element, status) {
  element.textContent = status;
  element.className = `status status-${status}`;
}
