package org.example.sandbox;

import ca.uhn.fhir.interceptor.api.Hook;
import ca.uhn.fhir.interceptor.api.Interceptor;
import ca.uhn.fhir.interceptor.api.Pointcut;
import ca.uhn.fhir.rest.api.Constants;
import ca.uhn.fhir.rest.api.RequestTypeEnum;
import ca.uhn.fhir.rest.api.server.RequestDetails;
import ca.uhn.fhir.rest.server.exceptions.BaseServerResponseException;
import ca.uhn.fhir.rest.server.exceptions.PreconditionFailedException;
import ca.uhn.fhir.rest.server.exceptions.ResourceVersionConflictException;

/**
 * Answers an update whose If-Match names a version that is not the current one with 412
 * Precondition Failed, as the FHIR REST spec (and HTTP) require; HAPI's JPA server answers
 * 409 Conflict there. Other version conflicts (no If-Match) keep HAPI's 409.
 */
@Interceptor
public class IfMatchPreconditionInterceptor {

  @Hook(Pointcut.SERVER_PRE_PROCESS_OUTGOING_EXCEPTION)
  public BaseServerResponseException replace(RequestDetails request, Throwable error) {
    boolean isUpdate =
        request.getRequestType() == RequestTypeEnum.PUT
            || request.getRequestType() == RequestTypeEnum.PATCH;
    if (isUpdate
        && request.getHeader(Constants.HEADER_IF_MATCH) != null
        && error instanceof ResourceVersionConflictException conflict) {
      PreconditionFailedException replacement =
          new PreconditionFailedException(conflict.getMessage(), conflict.getOperationOutcome());
      replacement.initCause(conflict);
      return replacement;
    }
    return null;
  }
}
