// A generation, live: status and step until the video exists, then the video itself. Every
// element marked `data-generation` is one (the compare page shows two); its parts are found by
// `data-part` inside it (`web/templates/_generation_live.html`). Once a video is in place the
// element sends a bubbling `generation-video` event, for the compare page's player.

import { follow, setStatus } from "./live.js";

const TYPES = ["queued", "started", "progress", "succeeded", "failed", "cancel_requested", "cancelled", "requeued"];

function showVideo(root, part) {
  if (!part("video")) {
    const video = document.createElement("video");
    video.id = `${root.dataset.generation}-video`;
    video.dataset.part = "video";
    video.className = "player";
    video.controls = true;
    video.preload = "auto";
    video.poster = `${root.dataset.outputs}/poster.jpg`;
    video.src = `${root.dataset.outputs}/video.mp4`;
    video.setAttribute("aria-label", root.dataset.videoLabel);
    const download = document.createElement("a");
    download.href = video.src;
    download.download = "";
    download.textContent = "Download the video";
    const line = document.createElement("p");
    line.append(download);
    part("output").append(video, line);
  }
  root.dispatchEvent(new CustomEvent("generation-video", { bubbles: true }));
}

function followGeneration(root) {
  const part = (name) => root.querySelector(`[data-part="${name}"]`);
  // Only the generation page offers cancelling.
  const hideCancel = () => { if (part("cancel")) part("cancel").hidden = true; };
  follow(root.dataset.stream, TYPES, (event) => {
    const data = event.data;
    switch (event.type) {
      case "queued":
      case "requeued":
        setStatus(part("status"), "queued");
        break;
      case "started":
        setStatus(part("status"), "running");
        break;
      case "progress":
        part("progress").max = data.total_steps;
        part("progress").value = data.step;
        part("step").textContent = `Step ${data.step} of ${data.total_steps}`;
        break;
      case "cancel_requested":
        hideCancel();
        break;
      case "succeeded":
      case "failed":
      case "cancelled":
        setStatus(part("status"), event.type);
        hideCancel();
        if (event.type === "succeeded") {
          part("progress").value = part("progress").max;
          part("step").textContent = "Done";
          showVideo(root, part);
        }
        if (event.type === "failed" && data.reason) {
          part("failure").textContent = data.reason;
          part("failure").hidden = false;
        }
        break;
    }
  }, (text) => { part("link").textContent = text; });
}

for (const root of document.querySelectorAll("[data-generation]")) followGeneration(root);
