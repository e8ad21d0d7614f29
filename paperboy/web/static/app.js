// Progressive enhancement only: without JavaScript the vote form posts and reloads the page.
document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (!form.matches("form[data-vote]")) return;
  event.preventDefault();
  const button = form.querySelector("button");
  button.disabled = true;
  try {
    const response = await fetch(form.action, {
      method: "POST", body: new FormData(form), headers: {"X-Requested-With": "fetch"},
      credentials: "same-origin",
    });
    if (response.status === 403) { window.location = "/login"; return; }
    if (!response.ok) throw new Error(response.statusText);
    const state = await response.json();
    form.querySelector(".count").textContent = state.votes;
    form.querySelector("input[name=up]").value = state.voted ? "0" : "1";
    button.setAttribute("aria-pressed", state.voted ? "true" : "false");
    button.title = state.voted ? "Take back your upvote" : "Upvote";
  } catch (e) {
    form.submit();  // fall back to the plain form
  } finally {
    button.disabled = false;
  }
});
