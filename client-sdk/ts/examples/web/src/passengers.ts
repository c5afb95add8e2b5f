// The party's details, as every hold asks for them: a fieldset per passenger and the contact email.
import { PassengerType } from "@aerobook/sdk";

/** A fieldset per passenger (given name, family name, date of birth) and the contact email. */
export function passengerFieldsHtml(count: number): string {
  const fieldsets = Array.from({ length: count }, (_, index) => `
    <fieldset><legend>Passenger ${index + 1}</legend>
      <label>Given name <input name="given-${index}" required maxlength="100" /></label>
      <label>Family name <input name="family-${index}" required maxlength="100" /></label>
      <label>Date of birth <input name="born-${index}" type="date" required /></label>
    </fieldset>`).join("");
  return `${fieldsets}<label>Contact email <input name="contact" type="email" required /></label>`;
}

/** The passengers and the contact email the fields hold. */
export function partyFrom(form: HTMLFormElement, count: number) {
  const data = new FormData(form);
  const passengers = Array.from({ length: count }, (_, index) => ({
    givenName: String(data.get(`given-${index}`)),
    familyName: String(data.get(`family-${index}`)),
    dateOfBirth: String(data.get(`born-${index}`)),
    type: PassengerType.ADULT,
  }));
  return { passengers, contactEmail: String(data.get("contact")) };
}
