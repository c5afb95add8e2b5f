// The account in the top bar, and the dialog to sign in or create an account.
import { ApiError, ErrorCode } from "@aerobook/sdk";

import { escape } from "./format.js";
import { $, attempt, client, showError, ui } from "./page.js";

export async function renderAccount(): Promise<void> {
  const signedIn = (await client.tokens()) !== undefined;
  if (!signedIn) {
    ui.account.innerHTML = `<button type="button" class="ghost" data-testid="open-sign-in">Sign in</button>`;
    ui.account.querySelector("button")?.addEventListener("click", () => openSignIn());
    return;
  }
  try {
    const me = await client.auth.getMe({});
    ui.account.innerHTML = `<span class="who" data-testid="signed-in-as">${escape(me.fullName || me.email)}</span>
      <button type="button" class="ghost">Sign out</button>`;
    ui.account.querySelector("button")?.addEventListener("click", () =>
      attempt(async () => {
        await client.signOut();
        await renderAccount();
      }),
    );
  } catch (error) {
    // A session the server no longer accepts ends here; a passing failure keeps it for the next try.
    if (ApiError.from(error).code === ErrorCode.UNAUTHORIZED) {
      await client.setTokens(undefined);
      await renderAccount();
    }
    showError(error);
  }
}

let afterSignIn: (() => void) | undefined;
let registering = false;

/** Asks the user to sign in (or create an account), then runs `then`, unless the dialog is dismissed. */
export function openSignIn(then?: () => void): void {
  afterSignIn = then;
  ui.signIn.showModal();
}

function setRegistering(on: boolean): void {
  registering = on;
  $("#sign-in-title").textContent = on ? "Create your account" : "Sign in";
  $("#sign-in-submit").textContent = on ? "Create account" : "Sign in";
  $("#sign-in-toggle").textContent = on ? "Have an account? Sign in" : "New here? Create an account";
  ui.signInForm.querySelector<HTMLElement>("[data-register-only]")!.hidden = !on;
}

/** Wires the sign-in dialog's buttons and form. */
export function setUpSignIn(): void {
  $("#sign-in-toggle").addEventListener("click", () => setRegistering(!registering));
  // Dismissing the dialog also drops the action that was waiting for the sign-in.
  $("#sign-in-close").addEventListener("click", () => {
    afterSignIn = undefined;
    ui.signIn.close();
  });
  ui.signIn.addEventListener("cancel", () => (afterSignIn = undefined));
  ui.signInForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const form = new FormData(ui.signInForm);
    const email = String(form.get("email"));
    const password = String(form.get("password"));
    void attempt(async () => {
      if (registering) {
        await client.auth.register({ email, password, fullName: String(form.get("fullName") ?? "") });
      } else {
        await client.auth.login({ email, password });
      }
      ui.signIn.close();
      ui.signInForm.reset();
      await renderAccount();
      afterSignIn?.();
      afterSignIn = undefined;
    }, $<HTMLButtonElement>("#sign-in-submit"));
  });
}
