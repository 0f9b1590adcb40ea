// A generation's page, live: status and step until the video exists, then the video itself.

import { follow, setStatus } from "./live.js";

const TYPES = ["queued", "started", "progress", "succeeded", "failed", "cancel_requested", "cancelled", "requeued"];
const root = document.getElementById("generation");
const $ = (id) => document.getElementById(id);

function showVideo() {
  if ($("generation-video")) return;
  const video = document.createElement("video");
  video.id = "generation-video";
  video.className = "player";
  video.controls = true;
  video.preload = "auto";
  video.poster = `${root.dataset.outputs}/poster.jpg`;
  video.src = `${root.dataset.outputs}/video.mp4`;
  video.setAttribute("aria-label", "The generated video");
  const download = document.createElement("a");
  download.href = video.src;
  download.download = "";
  download.textContent = "Download the video";
  const line = document.createElement("p");
  line.append(download);
  $("generation-output").append(video, line);
}

if (root) {
  follow(root.dataset.stream, TYPES, (event) => {
    const data = event.data;
    switch (event.type) {
      case "queued":
      case "requeued":
        setStatus($("generation-status"), "queued");
        break;
      case "started":
        setStatus($("generation-status"), "running");
        break;
      case "progress":
        $("generation-progress").max = data.total_steps;
        $("generation-progress").value = data.step;
        $("generation-step").textContent = `Step ${data.step} of ${data.total_steps}`;
        break;
      case "cancel_requested":
        $("generation-cancel").hidden = true;
        break;
      case "succeeded":
      case "failed":
      case "cancelled":
        setStatus($("generation-status"), event.type);
        $("generation-cancel").hidden = true;
        if (event.type === "succeeded") {
          $("generation-progress").value = $("generation-progress").max;
          $("generation-step").textContent = "Done";
          showVideo();
        }
        if (event.type === "failed" && data.reason) {
          $("generation-failure").textContent = data.reason;
          $("generation-failure").hidden = false;
        }
        break;
    }
  }, (text) => { $("generation-link").textContent = text; });
}
