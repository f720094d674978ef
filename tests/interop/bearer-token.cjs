// The SDK's AuthenticationHandler signs only https Graph (or https custom) hosts and strips Authorization
// elsewhere, so against a plain-http test server the token comes from this middleware, plugged in through
// the SDK's public middleware API.
class BearerToken {
  constructor(token) {
    this.token = token;
  }
  setNext(next) {
    this.next = next;
  }
  async execute(context) {
    const headers = context.options.headers || {};
    if (typeof headers.set === "function") headers.set("Authorization", `Bearer ${this.token}`);
    else headers["Authorization"] = `Bearer ${this.token}`;
    context.options.headers = headers;
    return this.next.execute(context);
  }
}

module.exports = { BearerToken };
