// Copy buttons: <button data-copy="ID"> copies the value of the element with that id.
// The button stays hidden without JavaScript; the key is still there to select by hand.
for (const button of document.querySelectorAll("button[data-copy]")) {
  const source = document.getElementById(button.dataset.copy);
  const status = document.getElementById("copy-status");
  if (!source) continue;
  button.hidden = false;
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(source.value);
      if (status) status.textContent = "Copied to the clipboard.";
    } catch {
      source.select();
      if (status) status.textContent = "Copying was blocked: the key is selected, press Ctrl+C (⌘C on a Mac).";
    }
  });
}
