// The compare page's player: once both videos exist, playing, pausing or seeking either (or
// the "Play both" button) does the same to the other, and while they play the second is pulled
// back to the first whenever they drift apart by more than a frame or two.

const DRIFT_SECONDS = 0.1;
const root = document.getElementById("compare");

function pair(videos, button) {
  const [lead, other] = videos;
  const each = (act) => videos.forEach(act);
  const follower = (video) => (video === lead ? other : lead);
  const label = () => { button.textContent = lead.paused ? "Play both" : "Pause both"; };
  // Two soundtracks at once would be noise: the first keeps its sound.
  other.muted = true;
  // A pause before playback starts rejects play(); the pause is what was asked for then.
  const play = (video) => video.play().catch(() => {});
  button.addEventListener("click", () => {
    if (lead.paused) {
      if (lead.ended) each((video) => { video.currentTime = 0; });
      each(play);
    } else {
      each((video) => video.pause());
    }
  });
  for (const video of videos) {
    // play() on a playing video and pause() on a paused one fire nothing, so these settle.
    video.addEventListener("play", () => { play(follower(video)); label(); });
    video.addEventListener("pause", () => { follower(video).pause(); label(); });
    video.addEventListener("seeked", () => {
      const twin = follower(video);
      if (Math.abs(twin.currentTime - video.currentTime) > DRIFT_SECONDS) twin.currentTime = video.currentTime;
    });
  }
  lead.addEventListener("timeupdate", () => {
    if (!lead.paused && !other.seeking && Math.abs(other.currentTime - lead.currentTime) > DRIFT_SECONDS) {
      other.currentTime = lead.currentTime;
    }
  });
  button.hidden = false;
  label();
}

function ready() {
  const videos = [...root.querySelectorAll("video")];
  if (videos.length === 2 && root.dataset.paired === undefined) {
    root.dataset.paired = "";
    pair(videos, document.getElementById("compare-play"));
  }
}

if (root) {
  // generation.js adds each video when its generation succeeds; rendered ones are there already.
  root.addEventListener("generation-video", ready);
  ready();
}
